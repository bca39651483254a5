"""Graph-optimized and INT8 variants of an exported model, with a manifest.

Writes, next to `artifacts/<name>/onnx/model.onnx` (the FP32 export, variant `fp32`):
`model.O1.onnx`, `model.O2.onnx` (ONNX Runtime graph optimization through optimum's
ORTOptimizer; `model.O3.onnx` too where the spec asks with `[optimize] o3 = true`, see
`O3_NOT_ASKED`), `model.int8.onnx` (dynamic INT8 of the FP32 graph with
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

import json
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
    its test metric, which the search's cosine does not measure). A student's is always
    made; the teacher's only where the spec asks (`INT8_SELECTIVE_NOT_ASKED`)."""
    if spec.task != "feature-extraction" or (not prefix and not asks_for(spec, "int8_selective")):
        return []
    stem = source.removesuffix(".onnx")
    return [(f"{prefix}int8-selective", f"{stem}.int8-selective.onnx", "int8", selective.HOW,
             selective.selective_int8(spec, spec.onnx_dir / source))]


# Why O3 is made only on request: it is O2 with GELU approximated (`FastGelu`), so it
# is not the model that was trained, and its exact gate failed on every transformer model
# here (9 of 9; news-topic's logits by 1.6e-3, release-qa's by 3.2e-2), while its parity
# and measure cost the test command minutes on each. A spec opts in to weigh it anyway.
O3_NOT_ASKED = (
    "not asked for: O3 is O2 with GELU approximated (FastGelu), which missed the exact gate on every "
    "transformer model tried (9 of 9); set `[optimize] o3 = true` in the spec to make it"
)


# Why a teacher's selective INT8 is made only on request: its search (a quantization and
# a pass over the calibration texts for each of 36 MatMuls, then one per kept count) took
# 141 s on minilm-embed, and on both teachers tried it missed the gate on inputs it never
# saw (lowest cosine 0.983 and 0.987 under 0.99), while a student's passes and serves.
INT8_SELECTIVE_NOT_ASKED = (
    "not asked for: the teacher's selective INT8 missed its gate on every teacher tried (2 of 2: lowest "
    "cosine 0.983 and 0.987, under 0.99) and its search takes minutes; set `[optimize] int8_selective = true` "
    "in the spec to make it"
)


def asks_for(spec: Spec, flag: str) -> bool:
    """Whether the resolved spec has `[optimize] <flag> = true`. Read here rather than by
    `spec.load`: only the optimize steps read it, and a change to `spec` would re-key every
    step of every model."""
    raw = json.loads((spec.artifact_dir / "spec.json").read_text(encoding="utf-8"))
    return bool(raw.get("optimize", {}).get(flag, False))


def optional_recipes(spec: Spec) -> list[Recipe]:
    """The variants a spec opts into (`[optimize]`), but the selective INT8 (last of all,
    `selective_recipe`)."""
    if not asks_for(spec, "o3"):
        return []
    return [("O3", "model.O3.onnx", "fp32", "ORTOptimizer O3", optimized(spec.onnx_dir, "O3"))]


def not_asked(spec: Spec) -> list[dict]:
    """The manifest entries of the optional variants the spec did not ask for: listed, so
    the report and the model card say why they are missing."""
    entries = []
    if not asks_for(spec, "o3"):
        entries.append({"name": "O3", "kind": "fp32", "made": False, "how": "ORTOptimizer O3", "why": O3_NOT_ASKED})
    if spec.task == "feature-extraction" and not asks_for(spec, "int8_selective"):
        entries.append({"name": "int8-selective", "kind": "int8", "made": False, "how": selective.HOW,
                        "why": INT8_SELECTIVE_NOT_ASKED})
    return entries


def recipes(spec: Spec) -> tuple[list[Recipe], str]:
    """The teacher's variants of `model.onnx`, and the INT8 config this CPU gets."""
    onnx_dir = spec.onnx_dir
    quantize_fp32, int8_config = int8_of_fp32(onnx_dir)
    return [
        ("O1", "model.O1.onnx", "fp32", "ORTOptimizer O1", optimized(onnx_dir, "O1")),
        ("O2", "model.O2.onnx", "fp32", "ORTOptimizer O2", optimized(onnx_dir, "O2")),
        *optional_recipes(spec),
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


def write_variants(spec: Spec, teacher: list[Recipe], int8_config: str) -> None:
    """Makes each recipe's variant of the FP32 export and writes `variants.json`: the
    export, every recipe's entry (made, or why not) and the optional variants not asked for."""
    onnx_dir = spec.onnx_dir
    fp32 = onnx_dir / "model.onnx"
    if not fp32.is_file():
        raise SystemExit(f"no {fp32}: run `cargo xtask export` first")
    variants = [{"name": "fp32", "kind": "fp32", "made": True, "how": "optimum export", **describe(fp32)}]
    variants += [made(*recipe, onnx_dir) for recipe in teacher]
    variants += not_asked(spec)
    for entry in not_asked(spec):  # an earlier run's file, asked for then, is not listed now
        (onnx_dir / f"model.{entry['name']}.onnx").unlink(missing_ok=True)
    write_json(onnx_dir / "variants.json", {"model": spec.name, "int8_config": int8_config, "variants": variants})


def optimize(spec: Spec) -> None:
    write_variants(spec, *recipes(spec))


def main() -> None:
    optimize(from_cli(__doc__ or "optimize"))


if __name__ == "__main__":
    main()
