"""INT8 of an ONNX graph, the two ways ONNX Runtime makes it, for every step that
quantizes (`optimize`, `student`, `selective`, `vision`).

- `dynamic`: weights to INT8 ahead of time, each activation's scale computed at run time
  from the values it holds. Weights per channel (a scale for each output column) or per
  tensor: neither holds every gate. Per channel took news-topic-head's INT8 from 2.92
  points under FP32's test accuracy (per tensor) to 0.45, and news-topic's from 0.67 (by
  hand) to 0.22, at the same speed within the noise; per tensor kept release-topics' O2
  INT8 inside its gate (0.83 points of exact match under FP32), where per channel fell
  1.33-1.67 under (2026-12-05, this machine). So the optimize steps make both (`int8` per
  channel, `O2-int8` per tensor), and the gate and `measure` choose.
- `static`: weights and activations to INT8 ahead of time, the activations' ranges from
  calibration inputs (MinMax), written as QDQ pairs for ONNX Runtime to fuse. It is what
  a CNN needs (ASSETS.md: dynamic INT8 is poor there). On the transformers here it lost
  to dynamic: where it held its gate (news-topic, -lora, -fewshot, release-ner) it ran
  0.82-0.90x the per-channel dynamic INT8's batch-32 throughput, and it missed on
  news-topic-head (7.42 points), release-topics (6.33) and news-embed (cosine 0.77);
  `measure` and the gate decide per model and machine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from .spec import Spec

# Calibration texts: this many titles and as many bodies of the training split.
CALIBRATION_PAIRS = 48


@contextlib.contextmanager
def quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizers warn on the root logger, at every call, that the graph was
    not pre-processed (symbolic shape inference, which a transformer's dynamic axes refuse)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def dynamic(
    source: Path,
    target: Path,
    *,
    per_channel: bool,
    only: list[str] | None = None,
    keep: Iterable[str] = (),
) -> None:
    """Dynamic INT8 (QInt8 weights) of `source` into `target`: every quantizable node, or
    `only` those named, never those in `keep`. Works on graph-optimized files too, which
    optimum's ORTQuantizer refuses (ASSETS.md)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if not source.is_file():
        raise RuntimeError(f"{source.name} was not made, so it cannot be quantized")
    with quiet_root_logger():
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            reduce_range=False,
            nodes_to_quantize=only,
            nodes_to_exclude=list(keep),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def static(
    source: Path,
    target: Path,
    calibration: Iterable[dict],
    *,
    op_types: list[str] | None = None,
    exclude: list[str] | None = None,
    pre_process: bool = False,
) -> None:
    """Static INT8 of `source` into `target`: QDQ, per-channel QInt8 weights, QUInt8
    activations whose ranges are the MinMax of `calibration` (input feeds, one per run).
    `op_types` limits what is quantized (all that ONNX Runtime can, by default), and the
    nodes named in `exclude` stay FP32;
    `pre_process` runs ONNX Runtime's shape inference and folding first, which a graph
    with fixed shapes takes and a transformer's dynamic axes refuse."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(calibration)

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory(dir=target.parent) as scratch, quiet_root_logger():
        graph = source
        if pre_process:
            graph = Path(scratch) / "prepared.onnx"
            quant_pre_process(str(source), str(graph))
        quantize_static(
            str(graph),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=op_types,
            nodes_to_exclude=exclude,
        )


def calibration_texts(spec: Spec) -> list[str]:
    """Seeded texts of the training split (never the test split or the golden inputs):
    the first lines and the rest of `CALIBRATION_PAIRS` of them, short and long as users
    send (a BBC article's title and body, as `embed` pairs them; a one-line text gives only
    itself)."""
    rows = [json.loads(line)["text"] for line in (spec.data_dir / "train.jsonl").open(encoding="utf-8")]
    chosen = random.Random(spec.train.seed).sample(rows, min(CALIBRATION_PAIRS, len(rows)))
    pairs = [text.partition("\n") for text in chosen]
    titles = [title.strip() for title, _, _ in pairs]
    return titles + [body.strip() for _, _, body in pairs if body.strip()]


def text_feeds(source: Path, max_length: int, texts: list[str], batch: int) -> list[dict]:
    """`texts` as the input feeds of `source` (a text model beside its `tokenizer.json`),
    `batch` at a time, padded to the longest of each batch, cut at `max_length` tokens."""
    import numpy as np
    import onnx
    from tokenizers import Tokenizer

    wanted = {i.name for i in onnx.load(str(source), load_external_data=False).graph.input}
    tokenizer = Tokenizer.from_file(str(source.parent / "tokenizer.json"))
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    feeds = []
    for start in range(0, len(texts), batch):
        encodings = tokenizer.encode_batch(texts[start : start + batch])
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), np.int64)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        feeds.append({name: value for name, value in feed.items() if name in wanted})
    return feeds


def static_of_text(spec: Spec, source: Path):
    """Makes the static INT8 of a text model's `source`: its MatMuls only (layer norms,
    softmax, GELU and the additions stay FP32: with every operator quantized it ran 0.73x
    as fast, by hand), calibrated one text at a time on `calibration_texts`, so that each
    text's own range counts as it does at batch 1."""

    def make(target: Path) -> dict:
        texts = calibration_texts(spec)
        static(source, target, text_feeds(source, spec.train.max_length, texts, 1), op_types=["MatMul"])
        return {"calibration": {"texts": len(texts), "from": "training split, first lines and the rest"}}

    return make


STATIC_HOW = "onnxruntime quantize_static, QDQ, per-channel QInt8 weights, QUInt8 activations, MinMax calibration"
