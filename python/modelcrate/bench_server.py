"""The Python peers `cargo xtask bench` measures Modelcrate against, written the way their
users write them: FastAPI with uvicorn, a synchronous endpoint (FastAPI runs it on its
thread pool), one model object loaded at start-up and shared by every request.

- `--backend onnxruntime`: the same ONNX file Modelcrate serves, with `--threads`
  intra-op threads. A text classifier or an embedding model: one
  `onnxruntime.InferenceSession` and the `tokenizers` library on the same tokenizer.json
  (padding to the longest text of the request), numpy softmax, or numpy mean pooling and
  L2 normalisation as the model's pooling.json says. A token classifier: optimum's
  `ORTModelForTokenClassification` on that file inside the `transformers`
  token-classification pipeline (entity aggregation in numpy by hand is what nobody
  writes);
- `--backend transformers`: PyTorch on the checkpoint, `torch.set_num_threads(--threads)`:
  the `transformers` text- or token-classification pipeline, or for an embedding model
  `SentenceTransformer.encode`.

Each answers `POST /models/{name}/predict` with `{"inputs": str | [str]}` in the
Inference API's shape for its task (`[{"label", "score"}]` per text, a vector per text, or
`[{"entity_group", "score", "word", "start", "end"}]` per text with the `simple`
aggregation Modelcrate uses by default) and `GET /health`; the load generator sees no
difference from Modelcrate's server.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def session_options(threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return options


def onnxruntime_backend(task: str, onnx: Path, tokenizer_path: Path, threads: int):
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    if task == "token-classification":
        from optimum.onnxruntime import ORTModelForTokenClassification
        from transformers import AutoTokenizer, pipeline

        model = ORTModelForTokenClassification.from_pretrained(
            str(onnx.parent),
            file_name=onnx.name,
            session_options=session_options(threads),
            provider="CPUExecutionProvider",
        )
        tagger = pipeline(
            "token-classification",
            model=model,
            tokenizer=AutoTokenizer.from_pretrained(str(onnx.parent)),
            aggregation_strategy="simple",
        )
        return lambda texts: tagger(texts)

    session = ort.InferenceSession(str(onnx), session_options(threads), providers=["CPUExecutionProvider"])
    input_names = [i.name for i in session.get_inputs()]
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_padding()  # to the longest text of each request

    def run(texts: list[str]):
        encodings = tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return session.run(None, {name: feeds[name] for name in input_names})[0], feeds["attention_mask"]

    if task == "feature-extraction":
        pooling = json.loads((onnx.parent / "pooling.json").read_text(encoding="utf-8"))
        if pooling["mode"] != "mean":
            raise SystemExit(f"{onnx.parent}/pooling.json: only mean pooling is written here, not {pooling['mode']}")

        def embed(texts: list[str]) -> list[list[float]]:
            hidden, mask = run(texts)
            mask = mask[..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            if pooling["normalize"]:
                pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            return pooled.tolist()

        return embed

    labels = json.loads((onnx.parent / "config.json").read_text(encoding="utf-8"))["id2label"]

    def classify(texts: list[str]) -> list[dict]:
        logits, _ = run(texts)
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        scores = exp / exp.sum(axis=-1, keepdims=True)
        best = scores.argmax(axis=-1)
        return [{"label": labels[str(int(b))], "score": float(s[b])} for b, s in zip(best, scores)]

    return classify


def transformers_backend(task: str, checkpoint: Path, threads: int):
    import torch

    torch.set_num_threads(threads)
    if task == "feature-extraction":
        from sentence_transformers import SentenceTransformer

        encoder = SentenceTransformer(str(checkpoint), device="cpu")
        return lambda texts: encoder.encode(texts, convert_to_numpy=True).tolist()

    from transformers import pipeline

    if task == "token-classification":
        tagger = pipeline("token-classification", model=str(checkpoint), device=-1, aggregation_strategy="simple")

        def tag(texts: list[str]) -> list:
            with torch.inference_mode():
                return tagger(texts)

        return tag

    classifier = pipeline("text-classification", model=str(checkpoint), device=-1)

    def classify(texts: list[str]) -> list[dict]:
        with torch.inference_mode():
            return classifier(texts, truncation=True)

    return classify


def jsonable(answer):
    """numpy scalars (the pipelines' scores) as plain floats."""
    if isinstance(answer, list):
        return [jsonable(item) for item in answer]
    if isinstance(answer, dict):
        return {key: jsonable(value) for key, value in answer.items()}
    return answer.item() if hasattr(answer, "item") else answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["onnxruntime", "transformers"], required=True)
    parser.add_argument(
        "--task",
        choices=["text-classification", "feature-extraction", "token-classification"],
        default="text-classification",
    )
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
        answer = onnxruntime_backend(args.task, onnx_dir / args.onnx, onnx_dir / "tokenizer.json", args.threads)
    else:
        answer = transformers_backend(args.task, args.model_dir / "checkpoint", args.threads)

    app = FastAPI()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/models/{name}/predict")
    def predict(name: str, body: dict = Body(...)):
        inputs = body.get("inputs")
        if isinstance(inputs, str):
            # One text: its answer alone (a vector, a list of entities), or a one-label list.
            single = jsonable(answer([inputs])[0])
            return [single] if args.task == "text-classification" else single
        if isinstance(inputs, list) and inputs and all(isinstance(t, str) for t in inputs):
            return jsonable(answer(inputs))
        raise HTTPException(status_code=422, detail="`inputs` must be a string or a list of strings")

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
