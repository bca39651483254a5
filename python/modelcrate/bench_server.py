"""The Python peers `cargo xtask bench` measures Modelcrate against, written the way their
users write them: FastAPI with uvicorn, a synchronous endpoint (FastAPI runs it on its
thread pool), one model object loaded at start-up and shared by every request.

- `--backend onnxruntime`: the same ONNX file Modelcrate serves, one
  `onnxruntime.InferenceSession` with `--threads` intra-op threads, the `tokenizers`
  library on the same tokenizer.json (padding to the longest text of the request), numpy
  softmax;
- `--backend transformers`: the `transformers` text-classification pipeline on the
  PyTorch checkpoint, `torch.set_num_threads(--threads)`.

Both answer `POST /models/{name}/predict` with `{"inputs": str | [str]}` in the Inference
API shape (`[{"label", "score"}]` per text) and `GET /health`; the load generator sees no
difference from Modelcrate's server.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def onnxruntime_backend(onnx: Path, tokenizer_path: Path, threads: int):
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    input_names = [i.name for i in session.get_inputs()]
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_padding()  # to the longest text of each request
    labels = json.loads((onnx.parent / "config.json").read_text(encoding="utf-8"))["id2label"]

    def classify(texts: list[str]) -> list[dict]:
        encodings = tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        logits = session.run(None, {name: feeds[name] for name in input_names})[0]
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        scores = exp / exp.sum(axis=-1, keepdims=True)
        best = scores.argmax(axis=-1)
        return [{"label": labels[str(int(b))], "score": float(s[b])} for b, s in zip(best, scores)]

    return classify


def transformers_backend(checkpoint: Path, threads: int):
    import torch
    from transformers import pipeline

    torch.set_num_threads(threads)
    classifier = pipeline("text-classification", model=str(checkpoint), device=-1)

    def classify(texts: list[str]) -> list[dict]:
        with torch.inference_mode():
            return classifier(texts, truncation=True)

    return classify


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["onnxruntime", "transformers"], required=True)
    parser.add_argument("--model-dir", type=Path, required=True, help="artifacts/<name>")
    parser.add_argument("--onnx", default="model.onnx", help="file under onnx/ (the serving variant)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})

    import uvicorn
    from fastapi import Body, FastAPI, HTTPException

    if args.backend == "onnxruntime":
        onnx_dir = args.model_dir / "onnx"
        classify = onnxruntime_backend(onnx_dir / args.onnx, onnx_dir / "tokenizer.json", args.threads)
    else:
        classify = transformers_backend(args.model_dir / "checkpoint", args.threads)

    app = FastAPI()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/models/{name}/predict")
    def predict(name: str, body: dict = Body(...)):
        inputs = body.get("inputs")
        if isinstance(inputs, str):
            return [classify([inputs])[0]]
        if isinstance(inputs, list) and inputs and all(isinstance(t, str) for t in inputs):
            return classify(inputs)
        raise HTTPException(status_code=422, detail="`inputs` must be a string or a list of strings")

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
