"""Export a fine-tuned checkpoint to ONNX with optimum; describe its signature.

Writes `artifacts/<name>/onnx/`: model.onnx, config.json, tokenizer.json (truncation at
the spec's max length, no padding: the Rust runtime pads each batch itself) and
signature.json (input and output names, element types, dimensions), which is what
`cargo xtask gen` reads. A sentence-transformers checkpoint is exported as its
transformer (`last_hidden_state`), and its pooling and normalisation are described in
pooling.json for the Rust side, which pools over the attention mask itself. A SetFit
classifier's body is exported the same way, and its scikit-learn head beside it
(`head.onnx`, see `fewshot`). A distilled student is exported later, by its own step
(see `student`), beside what this step writes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .spec import Spec, from_cli, write_json

# ONNX TensorProto element types by number, named as the Rust side names them.
ELEMENT_TYPES = {1: "float32", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64"}


def describe(values) -> list[dict]:
    described = []
    for value in values:
        tensor = value.type.tensor_type
        dims = [d.dim_param if d.dim_param else d.dim_value for d in tensor.shape.dim]
        dtype = ELEMENT_TYPES.get(tensor.elem_type, f"onnx-type-{tensor.elem_type}")
        described.append({"name": value.name, "dtype": dtype, "dims": dims})
    return described


def signature(model_path: Path) -> dict:
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    return {
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "inputs": describe(inputs),
        "outputs": describe(model.graph.output),
    }


def fix_tokenizer(path: Path, max_length: int) -> None:
    """Truncate like the pipeline (longest_first at max_length); leave padding to the runtime."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_length, strategy="longest_first", stride=0)
    tokenizer.no_padding()
    tokenizer.save(str(path))


def export_task(spec: Spec) -> str:
    """What optimum exports: a SetFit checkpoint's transformer is its body (token vectors,
    pooled in Rust)."""
    return "feature-extraction" if spec.train.strategy == "setfit" else spec.task


def onnx_of(spec: Spec, checkpoint: Path, output: Path) -> None:
    """Exports `checkpoint` into the folder `output` (model.onnx, config, tokenizer)."""
    from optimum.exporters.onnx import main_export  # slow to import: only once there is work

    main_export(
        model_name_or_path=str(checkpoint),
        output=output,
        task=export_task(spec),
        opset=spec.opset,
        device="cpu",
        library_name="transformers",
        local_files_only=True,
        do_validation=True,
    )


def export(spec: Spec) -> None:
    if not (spec.checkpoint_dir / "config.json").is_file():
        raise SystemExit(f"no checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    staging = spec.onnx_dir.with_name("onnx.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    onnx_of(spec, spec.checkpoint_dir, staging)
    fix_tokenizer(staging / "tokenizer.json", spec.train.max_length)
    write_json(staging / "signature.json", signature(staging / "model.onnx"))
    if export_task(spec) == "feature-extraction":
        from .embed import pooling_description

        write_json(staging / "pooling.json", pooling_description(spec.checkpoint_dir))
    if spec.train.strategy == "setfit":
        from .fewshot import export_head

        export_head(spec, staging)
    shutil.rmtree(spec.onnx_dir, ignore_errors=True)
    staging.replace(spec.onnx_dir)
    print(f"exported {spec.onnx_dir / 'model.onnx'}", flush=True)


def main() -> None:
    export(from_cli(__doc__ or "export"))


if __name__ == "__main__":
    main()
