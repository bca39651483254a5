"""PyTorch reference outputs for the golden inputs and the test split.

Reads `golden/<name>/inputs.json` and the checkpoint; writes
`golden/<name>/reference.json` with, for every case: the Python tokenizer's ids,
PyTorch's logits (each case run alone, unpadded) and the `transformers`
text-classification pipeline's own JSON for the parameter sets the server accepts.
The same for all cases as one batch, and PyTorch's predictions on the whole test split
(label ids; for a multi-label model, the ids scoring at least 0.5 after the sigmoid).
For a sentence-embedding model: `SentenceTransformer.encode` per case and retrieval over
the test split (see `embed`); for an entity tagger, the token-classification pipeline's
answers for every aggregation strategy (see `ner`); for a SetFit classifier, the same as a
text classifier's with its head's outputs (see `fewshot`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from . import bbc
from .spec import Spec, from_cli, seed_everything, write_json
from .train import accuracy, evaluate

# Parameter sets whose pipeline output is recorded, by the key the Rust side reads.
PIPELINE_CALLS: dict[str, dict] = {
    "default": {},
    "top_k_1": {"top_k": 1},
    "top_k_2": {"top_k": 2},
    "top_k_none": {"top_k": None},
    "sigmoid_all": {"top_k": None, "function_to_apply": "sigmoid"},
    "none_all": {"top_k": None, "function_to_apply": "none"},
    "none_default": {"function_to_apply": "none"},
}


def checkpoint_digest(checkpoint: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(checkpoint.iterdir()):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def golden(spec: Spec) -> None:
    """The fine-tuned model's reference (a distilled student's is its own step's, see
    `student`)."""
    write_json(spec.golden_dir / "reference.json", reference(spec, spec.checkpoint_dir))


def reference(spec: Spec, checkpoint: Path) -> dict:
    """What PyTorch answers from `checkpoint` for the golden inputs and the test split."""
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    seed_everything(spec.train.seed)
    if not (checkpoint / "config.json").is_file():
        raise SystemExit(f"no checkpoint at {checkpoint}: run `cargo xtask train` first")
    inputs_path = spec.golden_dir / "inputs.json"
    cases = json.loads(inputs_path.read_text(encoding="utf-8"))["cases"]

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    tokenize = {"truncation": True, "max_length": spec.train.max_length}

    records = []
    with torch.inference_mode():
        for case in cases:
            encoded = tokenizer(case["text"], return_tensors="pt", **tokenize)
            logits = model(**encoded).logits[0].tolist()
            outputs = {key: classify(case["text"], **params, **tokenize) for key, params in PIPELINE_CALLS.items()}
            records.append({**case, "input_ids": encoded["input_ids"][0].tolist(), "logits": logits, "pipeline": outputs})
        texts = [case["text"] for case in cases]
        batch = {key: classify(texts, **params, **tokenize) for key, params in PIPELINE_CALLS.items()}

    test = bbc.read_split(spec.data_dir, "test")
    predictions = evaluate(model, tokenizer, [row["text"] for row in test], spec.train.max_length)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    # A BBC row has its label id; a multi-label row its topics, as label ids here.
    targets = [row["label_id"] if "label_id" in row else sorted(labels.index(t) for t in row["topics"]) for row in test]
    test_accuracy = accuracy(predictions, targets)
    print(f"golden: {len(records)} cases; PyTorch test accuracy {test_accuracy:.4f} ({checkpoint})", flush=True)

    return {
        "about": "PyTorch reference outputs, written by `cargo xtask golden` from the checkpoint named here.",
        "model": spec.name,
        "checkpoint_sha256": checkpoint_digest(checkpoint),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "max_length": spec.train.max_length,
        "labels": labels,
        "problem_type": model.config.problem_type,
        "pipeline_calls": PIPELINE_CALLS,
        "cases": records,
        "batch": {"ids": [case["id"] for case in cases], "pipeline": batch},
        "test_split": {
            "examples": len(test),
            "accuracy": test_accuracy,
            "predictions": predictions,
        },
    }


def golden_embeddings(spec: Spec) -> None:
    from . import embed

    seed_everything(spec.train.seed)
    if not (spec.checkpoint_dir / "modules.json").is_file():
        raise SystemExit(f"no sentence-transformers checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    cases = json.loads((spec.golden_dir / "inputs.json").read_text(encoding="utf-8"))["cases"]
    write_json(spec.golden_dir / "reference.json", embed.golden(spec, cases, checkpoint_digest(spec.checkpoint_dir)))


def golden_entities(spec: Spec) -> None:
    from . import ner

    seed_everything(spec.train.seed)
    if not (spec.checkpoint_dir / "config.json").is_file():
        raise SystemExit(f"no checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    cases = json.loads((spec.golden_dir / "inputs.json").read_text(encoding="utf-8"))["cases"]
    write_json(spec.golden_dir / "reference.json", ner.golden(spec, cases, checkpoint_digest(spec.checkpoint_dir)))


def golden_fewshot(spec: Spec) -> None:
    from . import fewshot

    seed_everything(spec.train.seed)
    if not (spec.checkpoint_dir / "model_head.pkl").is_file():
        raise SystemExit(f"no SetFit checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    cases = json.loads((spec.golden_dir / "inputs.json").read_text(encoding="utf-8"))["cases"]
    reference = fewshot.golden(spec, cases, checkpoint_digest(spec.checkpoint_dir), PIPELINE_CALLS)
    write_json(spec.golden_dir / "reference.json", reference)


def main() -> None:
    spec = from_cli(__doc__ or "golden")
    if spec.train.strategy == "setfit":
        golden_fewshot(spec)
    elif spec.task == "feature-extraction":
        golden_embeddings(spec)
    elif spec.task == "token-classification":
        golden_entities(spec)
    else:
        golden(spec)


if __name__ == "__main__":
    main()
