"""Selective INT8 of a sentence-embedding model: dynamic INT8 with per-channel weights for
every weight MatMul but the few whose quantization moves the embeddings most, which stay
FP32.

Whole-graph dynamic INT8 moves MiniLM's sentence embeddings too far for the embedding gate
(every input's embedding within cosine 0.99 of FP32's): per-tensor weights reach 0.82 at
worst on news-embed's inputs, per-channel weights 0.98. The error is not spread evenly: a
handful of projections (the feed-forward output of the first layers above all) hold most
of it. The search, on calibration texts of the training split only (titles and bodies,
the two kinds of text the model embeds; never the test split or the golden inputs):

1. each weight MatMul is quantized alone, the rest FP32; its sensitivity is one minus the
   lowest cosine to FP32's embeddings over the calibration texts;
2. the most sensitive are kept in FP32, one more at a time, until the whole graph's lowest
   cosine on the calibration texts reaches `CALIBRATION_COSINE`: above the gate's 0.99,
   because inputs the search never saw drift further. At most `MAX_KEPT_FRACTION` of the
   MatMuls may stay FP32; past that the variant is not made, and the manifest says why.

The parity gate then holds the result to the bounds of every INT8 variant, and it may
still refuse it: news-embed's teacher kept 6 of 36 MatMuls, reached 0.9955 on the
calibration texts and 0.994 on the test texts, but 0.989 on one golden input, so it fails;
its student kept 2 of 18 and passes (0.994). What was kept and what the search saw go into
the variant's manifest entry.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

from . import quantize
from .spec import Spec

# The lowest cosine to FP32 on the calibration texts that ends the search.
CALIBRATION_COSINE = 0.995
# Most of the weight MatMuls that may stay FP32: beyond it the variant is hardly INT8.
MAX_KEPT_FRACTION = 0.25
BATCH = 16


class Embedder:
    """Pooled embeddings of fixed texts through an ONNX file, as the Rust side pools them."""

    def __init__(self, spec: Spec, source: Path, texts: list[str]):
        pooling = json.loads((source.parent / "pooling.json").read_text(encoding="utf-8"))
        self.mode = pooling["mode"]
        self.batches = quantize.text_feeds(source, spec.train.max_length, texts, BATCH)

    def __call__(self, path: Path):
        import numpy as np
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        pooled = []
        for batch in self.batches:
            hidden = session.run(["last_hidden_state"], batch)[0]
            if self.mode == "cls":
                pooled.append(hidden[:, 0])
            else:
                mask = batch["attention_mask"][..., None].astype(np.float32)
                pooled.append((hidden * mask).sum(1) / mask.sum(1))
        vectors = np.concatenate(pooled)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def weight_matmuls(path: Path) -> list[str]:
    """The MatMul nodes with a constant operand: what dynamic quantization turns to INT8."""
    import onnx

    graph = onnx.load(str(path)).graph
    constants = {initializer.name for initializer in graph.initializer}
    return [node.name for node in graph.node if node.op_type == "MatMul" and any(i in constants for i in node.input)]


def selective_int8(spec: Spec, source: Path) -> Callable[[Path], dict]:
    """Makes the selective INT8 of `source` (an FP32 graph beside `pooling.json`); returns
    the facts of the search for the manifest. Raises when no kept set within the limit
    reaches the calibration cosine."""

    def make(target: Path) -> dict:
        onnx_dir = source.parent
        texts = quantize.calibration_texts(spec)
        embed = Embedder(spec, source, texts)
        reference = embed(source)

        def lowest_cosine(path: Path) -> float:
            return float((embed(path) * reference).sum(axis=1).min())

        nodes = weight_matmuls(source)
        with tempfile.TemporaryDirectory(dir=onnx_dir.parent) as scratch:
            trial = Path(scratch) / "trial.onnx"
            sensitivity = []
            for node in nodes:
                quantize.dynamic(source, trial, per_channel=True, only=[node])
                sensitivity.append((1.0 - lowest_cosine(trial), node))
        ranked = [node for _, node in sorted(sensitivity, reverse=True)]
        limit = int(len(nodes) * MAX_KEPT_FRACTION)
        tried = []
        for kept in range(limit + 1):
            quantize.dynamic(source, target, per_channel=True, keep=ranked[:kept])
            cosine = lowest_cosine(target)
            tried.append(round(cosine, 5))
            print(f"  {kept} of {len(nodes)} MatMuls kept FP32: lowest calibration cosine {cosine:.5f}", flush=True)
            if cosine >= CALIBRATION_COSINE:
                return {
                    "kept_fp32": ranked[:kept],
                    "weight_matmuls": len(nodes),
                    "calibration": {
                        "texts": len(texts),
                        "from": "training split, titles and bodies",
                        "lowest_cosine": round(cosine, 5),
                        "target": CALIBRATION_COSINE,
                    },
                }
        raise RuntimeError(
            f"keeping the {limit} most sensitive of {len(nodes)} MatMuls in FP32 reaches a lowest calibration "
            f"cosine of {tried[-1]}, under {CALIBRATION_COSINE} (by kept count: {tried})"
        )

    return make


HOW = (
    "onnxruntime quantize_dynamic, per-channel QInt8 weights, of the FP32 graph, the MatMuls "
    "that move the embeddings most kept FP32 (searched on training-split texts)"
)
