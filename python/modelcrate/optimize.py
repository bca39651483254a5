"""Graph-optimized and INT8 variants of an exported model, with a manifest.

Writes, next to `artifacts/<name>/onnx/model.onnx` (the FP32 export, variant `fp32`):
`model.O1.onnx`, `model.O2.onnx`, `model.O3.onnx` (ONNX Runtime graph optimization
through optimum's ORTOptimizer), `model.int8.onnx` (dynamic INT8 of the FP32 graph with
optimum's ORTQuantizer, per-channel weights, the `avx512_vnni` config where the CPU has
VNNI, `avx2` otherwise), `model.O2.int8.onnx` (dynamic INT8 of the O2 graph with
onnxruntime's `quantize_dynamic`, per-tensor weights: ORTQuantizer refuses optimized
graphs) and
`model.int8-static.onnx` (static QDQ INT8 of the FP32 graph's MatMuls, calibrated on
training-split texts; see `quantize`); for a sentence-embedding model also
`model.int8-selective.onnx` (per-channel dynamic INT8 with the few MatMuls that move the
embeddings most kept FP32, see `selective`). Every variant shares the FP32 signature.
`variants.json` lists each with its size, node count and fused operators, or, where a
variant could not be made, why. A distilled student's variants are made the same ways by
its own step (see `student`), listed in `variants.student.json`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from . import quantize, selective
from .spec import Spec, from_cli, write_json

# Operators whose presence shows that a fusion or quantization actually happened.
FUSED_OPERATORS = (
    "Attention",
    "MultiHeadAttention",
    "SkipLayerNormalization",
    "EmbedLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "MatMulInteger",
    "DynamicQuantizeLinear",
    "DynamicQuantizeMatMul",
    "QAttention",
    "QuantizeLinear",
    "DequantizeLinear",
)


def cpu_has_vnni() -> bool:
    try:
        return "avx512_vnni" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def describe(path: Path) -> dict:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    counts = Counter(node.op_type for node in graph.node)
    return {
        "file": path.name,
        "size_bytes": path.stat().st_size,
        "nodes": len(graph.node),
        "fused": {op: counts[op] for op in FUSED_OPERATORS if counts[op]},
    }


def written_onnx(scratch: str) -> Path:
    """The one ONNX file optimum wrote into `scratch`. Its name is not predictable from the
    source's: optimum swaps the source's last suffix, so `model.student.onnx` comes out as
    `model.onnx`."""
    written = list(Path(scratch).glob("*.onnx"))
    if len(written) != 1:
        raise RuntimeError(f"optimum wrote {len(written)} ONNX files, not one: {[p.name for p in written]}")
    return written[0]


def optimized(onnx_dir: Path, level: str, source: str = "model.onnx") -> Callable[[Path], None]:
    def make(target: Path) -> None:
        from optimum.onnxruntime import ORTOptimizer
        from optimum.onnxruntime.configuration import AutoOptimizationConfig

        with tempfile.TemporaryDirectory(dir=onnx_dir.parent) as scratch:
            optimizer = ORTOptimizer.from_pretrained(onnx_dir, file_names=[source])
            config = AutoOptimizationConfig.with_optimization_level(level)
            optimizer.optimize(optimization_config=config, save_dir=scratch, file_suffix="optimized")
            shutil.move(written_onnx(scratch), target)

    return make


def int8_of_fp32(onnx_dir: Path, source: str = "model.onnx") -> tuple[Callable[[Path], None], str]:
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    vnni = cpu_has_vnni()
    config = (AutoQuantizationConfig.avx512_vnni if vnni else AutoQuantizationConfig.avx2)(
        is_static=False, per_channel=True
    )

    def make(target: Path) -> None:
        from optimum.onnxruntime import ORTQuantizer

        with tempfile.TemporaryDirectory(dir=onnx_dir.parent) as scratch:
            quantizer = ORTQuantizer.from_pretrained(onnx_dir, file_name=source)
            quantizer.quantize(save_dir=scratch, quantization_config=config)
            shutil.move(written_onnx(scratch), target)

    return make, "avx512_vnni" if vnni else "avx2"


def int8_of(source: Path) -> Callable[[Path], None]:
    """Dynamic INT8 with per-tensor weights, where `int8` has per-channel ones (see
    `quantize` for why both)."""
    def make(target: Path) -> None:
        quantize.dynamic(source, target, per_channel=False)

    return make


# A recipe: (variant name, file written, kind, how it was made, the function that makes it
# and may return facts of its making for the manifest).
Recipe = tuple[str, str, str, str, Callable[[Path], "dict | None"]]


def selective_recipe(spec: Spec, prefix: str, source: str) -> list[Recipe]:
    """The selective INT8 of `source`, for a sentence-embedding model only: its gate holds
    every embedding to FP32's, which whole-graph INT8 misses by far (a classifier's gate is
    its test metric, which the search's cosine does not measure)."""
    if spec.task != "feature-extraction":
        return []
    stem = source.removesuffix(".onnx")
    return [(f"{prefix}int8-selective", f"{stem}.int8-selective.onnx", "int8", selective.HOW,
             selective.selective_int8(spec, spec.onnx_dir / source))]


def recipes(spec: Spec) -> tuple[list[Recipe], str]:
    """The teacher's variants of `model.onnx`, and the INT8 config this CPU gets."""
    onnx_dir = spec.onnx_dir
    quantize_fp32, int8_config = int8_of_fp32(onnx_dir)
    return [
        ("O1", "model.O1.onnx", "fp32", "ORTOptimizer O1", optimized(onnx_dir, "O1")),
        ("O2", "model.O2.onnx", "fp32", "ORTOptimizer O2", optimized(onnx_dir, "O2")),
        ("O3", "model.O3.onnx", "fp32", "ORTOptimizer O3", optimized(onnx_dir, "O3")),
        ("int8", "model.int8.onnx", "int8",
         f"ORTQuantizer dynamic, per-channel, {int8_config} config, of the FP32 graph", quantize_fp32),
        ("O2-int8", "model.O2.int8.onnx", "int8",
         "onnxruntime quantize_dynamic, per-tensor QInt8 weights, of the O2 graph", int8_of(onnx_dir / "model.O2.onnx")),
        ("int8-static", "model.int8-static.onnx", "int8",
         f"{quantize.STATIC_HOW} on training-split texts, MatMuls only, of the FP32 graph",
         quantize.static_of_text(spec, onnx_dir / "model.onnx")),
        *selective_recipe(spec, "", "model.onnx"),
    ], int8_config


def made(name: str, file_name: str, kind: str, how: str, make: Callable[[Path], "dict | None"], onnx_dir: Path) -> dict:
    """Makes one variant; its manifest entry, or why it could not be made."""
    target = onnx_dir / file_name
    target.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        facts = make(target) or {}
        print(f"{name}: {file_name} in {time.monotonic() - started:.1f}s", flush=True)
        return {"name": name, "kind": kind, "made": True, "how": how, **describe(target), **facts}
    except Exception as error:  # a variant that cannot be made is recorded, not fatal
        target.unlink(missing_ok=True)
        print(f"{name}: could not be made: {error}", flush=True)
        return {"name": name, "kind": kind, "made": False, "how": how, "why": f"{type(error).__name__}: {error}"}


def optimize(spec: Spec) -> None:
    onnx_dir = spec.onnx_dir
    fp32 = onnx_dir / "model.onnx"
    if not fp32.is_file():
        raise SystemExit(f"no {fp32}: run `cargo xtask export` first")
    teacher, int8_config = recipes(spec)
    variants = [{"name": "fp32", "kind": "fp32", "made": True, "how": "optimum export", **describe(fp32)}]
    variants += [made(*recipe, onnx_dir) for recipe in teacher]
    write_json(onnx_dir / "variants.json", {"model": spec.name, "int8_config": int8_config, "variants": variants})


def main() -> None:
    optimize(from_cli(__doc__ or "optimize"))


if __name__ == "__main__":
    main()
