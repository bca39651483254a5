"""Token classification (named entities): fine-tuning on the synthetic release-text set,
entity-level evaluation, and the golden outputs of the `transformers` pipeline.

Token labels are BIO over wordpieces: the token where an entity starts is `B-`, every
later token inside it `I-`, special tokens are ignored by the loss. Evaluation uses the
pipeline itself (`aggregation_strategy="simple"`), as a user would read entities off the
model; an entity counts as found only with its exact type and character span.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import release_notes
from .fit import fit
from .spec import Spec, base_model_path, seed_everything, write_json

# Pipeline calls whose answers are recorded, by the key the Rust side reads.
PIPELINE_CALLS: dict[str, dict] = {
    "none": {"aggregation_strategy": "none"},
    "simple": {"aggregation_strategy": "simple"},
    "first": {"aggregation_strategy": "first"},
    "average": {"aggregation_strategy": "average"},
    "max": {"aggregation_strategy": "max"},
    "none_keep_o": {"aggregation_strategy": "none", "ignore_labels": []},
    "simple_keep_o": {"aggregation_strategy": "simple", "ignore_labels": []},
    "first_products_only": {"aggregation_strategy": "first", "ignore_labels": ["O", "VERSION"]},
}
# The calls also recorded for all golden texts in one pipeline call.
BATCH_CALLS = ("none", "simple", "average")


def plain(entities: list[dict]) -> list[dict]:
    """A pipeline answer as plain JSON values (numpy scalars to Python numbers)."""
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in entity.items()} for entity in entities]


def entity_pipeline(model, tokenizer):
    from transformers import pipeline

    return pipeline("token-classification", model=model, tokenizer=tokenizer, device=-1)


def evaluate(tagger, rows: list[dict]) -> tuple[dict, list[list[dict]]]:
    """Entity F1 of the pipeline's simple-aggregated answers, and those answers."""
    answers = [plain(tagger(row["text"], aggregation_strategy="simple")) for row in rows]
    scores = release_notes.entity_f1(
        [release_notes.spans_of(a) for a in answers],
        [release_notes.gold_spans(row["entities"]) for row in rows],
    )
    return scores, answers


def rows_of(sentences: list[release_notes.Sentence]) -> list[dict]:
    return [{"text": s.text, "entities": s.entities} for s in sentences]


def encode(tokenizer, rows: list[dict], max_length: int) -> list[dict]:
    """Each row's tokens (truncated to `max_length`) with their BIO label ids under
    `labels`: what training, and a distilled student, learn from."""
    encoded = []
    for row in rows:
        features = tokenizer(
            row["text"],
            truncation=True,
            max_length=max_length,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        features["labels"] = release_notes.token_labels(
            features.pop("offset_mapping"), features.pop("special_tokens_mask"), row["entities"]
        )
        encoded.append(features)
    return encoded


def train(spec: Spec) -> None:
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

    if spec.train.strategy != "full":
        raise SystemExit(f"strategy `{spec.train.strategy}` is not implemented for {spec.task}")
    started = time.monotonic()
    seed_everything(spec.train.seed)

    splits = release_notes.generate(spec.data.split_seed, spec.data.test_fraction, spec.data.validation_fraction)
    release_notes.write_splits(spec.data_dir, splits)
    entity_count = {k: sum(len(s.entities) for s in v) for k, v in splits.items()}
    print(
        "data (synthetic): "
        + ", ".join(f"{k} {len(v)} sentences / {entity_count[k]} entities" for k, v in splits.items()),
        flush=True,
    )

    base = base_model_path(spec)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.model_max_length = spec.train.max_length
    labels = release_notes.LABELS
    model = AutoModelForTokenClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    encoded = encode(tokenizer, rows_of(splits["train"]), spec.train.max_length)
    collate = DataCollatorForTokenClassification(tokenizer)
    tagger = entity_pipeline(model, tokenizer)
    validation_rows = rows_of(splits["validation"])

    def validation(epoch: int) -> dict:
        scores, _ = evaluate(tagger, validation_rows)
        print(f"epoch {epoch}: validation entity F1 {scores['f1']:.4f}", flush=True)
        return {"validation_entity_f1": scores["f1"]}

    history = fit(
        model,
        spec,
        len(encoded),
        lambda batch: model(**collate([encoded[i] for i in batch])).loss,
        validation,
        started,
    )
    train_seconds = time.monotonic() - started

    test, _ = evaluate(tagger, rows_of(splits["test"]))
    print(
        f"test entity F1 {test['f1']:.4f} (precision {test['precision']:.4f}, recall {test['recall']:.4f}) "
        f"on {len(splits['test'])} sentences with held-out templates and products",
        flush=True,
    )

    staging = spec.checkpoint_dir.with_name("checkpoint.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(spec.checkpoint_dir, ignore_errors=True)
    staging.replace(spec.checkpoint_dir)

    write_json(
        spec.artifact_dir / "metrics.json",
        {
            "model": spec.name,
            "strategy": spec.train.strategy,
            "metric": "entity_f1",
            "test_entity_f1": test["f1"],
            "test_precision": test["precision"],
            "test_recall": test["recall"],
            "test_per_type": test["per_type"],
            "test_entities": test["entities"],
            "test_examples": len(splits["test"]),
            "train_examples": len(splits["train"]),
            "epochs": history,
            "trainable_parameters": trainable,
            "total_parameters": total,
            "train_seconds": round(train_seconds, 1),
        },
    )


def golden(spec: Spec, cases: list[dict], digest: str, checkpoint: Path | None = None) -> dict:
    """Per case: the tokenizer's ids and character offsets, PyTorch's logits per token (the
    case alone), and the pipeline's answer for every recorded call; the batch answers;
    and the pipeline's simple-aggregated answer and entity F1 over the test split; from
    `checkpoint` (the fine-tuned model's unless a distilled student's is given)."""
    import torch
    import transformers
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    checkpoint = checkpoint or spec.checkpoint_dir
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForTokenClassification.from_pretrained(checkpoint).eval()
    tagger = entity_pipeline(model, tokenizer)
    tokenize = {"truncation": True, "max_length": spec.train.max_length}

    records = []
    with torch.inference_mode():
        for case in cases:
            encoded = tokenizer(case["text"], return_tensors="pt", return_offsets_mapping=True, **tokenize)
            offsets = encoded.pop("offset_mapping")[0].tolist()
            logits = model(**encoded).logits[0].tolist()
            answers = {key: plain(tagger(case["text"], **params)) for key, params in PIPELINE_CALLS.items()}
            records.append(
                {**case, "input_ids": encoded["input_ids"][0].tolist(), "offsets": offsets, "logits": logits, "pipeline": answers}
            )
        texts = [case["text"] for case in cases]
        batch = {key: [plain(a) for a in tagger(texts, **PIPELINE_CALLS[key])] for key in BATCH_CALLS}
        test_rows = release_notes.read_split(spec.data_dir, "test")
        test, answers = evaluate(tagger, test_rows)
    print(f"golden: {len(records)} cases; PyTorch test entity F1 {test['f1']:.4f} ({checkpoint})", flush=True)
    return {
        "about": "transformers token-classification pipeline outputs, written by `cargo xtask golden` from the checkpoint named here.",
        "model": spec.name,
        "checkpoint_sha256": digest,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "max_length": spec.train.max_length,
        "labels": [model.config.id2label[i] for i in range(model.config.num_labels)],
        "pipeline_calls": PIPELINE_CALLS,
        "cases": records,
        "batch": {"ids": [case["id"] for case in cases], "pipeline": batch},
        "test_split": {"examples": len(test_rows), "entity_f1": test["f1"], "scores": test, "entities": answers},
    }
