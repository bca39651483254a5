{#- An ONNX signature as a constant: what `load` checks an artifact against. Imported by
    every task's lib.rs, which imports `DType`, `Signature` and `TensorSpec`. -#}
{% macro signature(name, doc, inputs, outputs) %}
/// {{ doc }}
pub const {{ name }}: Signature = Signature {
    inputs: &[
        {% for input in inputs %}TensorSpec { name: "{{ input.name }}", dtype: DType::{{ input.dtype_variant }}, dims: {{ input.dims_rust }} },
        {% endfor %}
    ],
    outputs: &[
        {% for output in outputs %}TensorSpec { name: "{{ output.name }}", dtype: DType::{{ output.dtype_variant }}, dims: {{ output.dims_rust }} },
        {% endfor %}
    ],
};
{% endmacro %}
