{#- The ONNX signature as a constant: what `load` checks an artifact against. Included by every
    task's lib.rs, which imports `DType`, `Signature` and `TensorSpec`. -#}
/// The ONNX signature this crate was generated from; [`load`] refuses any other.
pub const SIGNATURE: Signature = Signature {
    inputs: &[
        {% for input in model.inputs %}TensorSpec { name: "{{ input.name }}", dtype: DType::{{ input.dtype_variant }}, dims: {{ input.dims_rust }} },
        {% endfor %}
    ],
    outputs: &[
        {% for output in model.outputs %}TensorSpec { name: "{{ output.name }}", dtype: DType::{{ output.dtype_variant }}, dims: {{ output.dims_rust }} },
        {% endfor %}
    ],
};
