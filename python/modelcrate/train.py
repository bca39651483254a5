"""Fine-tune a text classifier from its spec; write the checkpoint and metrics.json.

Writes `artifacts/<name>/data/{train,validation,test}.jsonl` (the split, so later
steps and the Rust parity check see the same articles), `checkpoint/` (safetensors,
config.json with id2label, tokenizer) and `metrics.json`.
"""

from __future__ import annotations

import math
import shutil
import time

from . import bbc
from .spec import Spec, base_model_path, from_cli, seed_everything, write_json


def _batches(encoded: list[dict], order: list[int], batch_size: int):
    for start in range(0, len(order), batch_size):
        yield [encoded[i] for i in order[start : start + batch_size]]


def evaluate(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 32) -> list[int]:
    """Top-1 label ids, batched with padding as a user's evaluation would be."""
    import torch

    model.eval()
    predictions: list[int] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            predictions.extend(model(**batch).logits.argmax(dim=-1).tolist())
    return predictions


def accuracy(predictions: list[int], targets: list[int]) -> float:
    return sum(p == t for p, t in zip(predictions, targets, strict=True)) / len(targets)


def train(spec: Spec) -> None:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        get_linear_schedule_with_warmup,
    )

    if spec.train.strategy != "full":
        raise SystemExit(f"strategy `{spec.train.strategy}` is not implemented for {spec.task}")
    started = time.monotonic()
    seed_everything(spec.train.seed)

    labels, splits = bbc.split(spec)
    bbc.write_splits(spec.data_dir, labels, splits)
    print(f"data: {', '.join(f'{k} {len(v)}' for k, v in splits.items())} articles; labels {labels}", flush=True)

    base = base_model_path(spec)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.model_max_length = spec.train.max_length
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type=spec.problem_type,
    )

    train_set = splits["train"]
    encoded = [
        {**tokenizer(e.text, truncation=True, max_length=spec.train.max_length), "labels": e.label} for e in train_set
    ]
    collate = DataCollatorWithPadding(tokenizer)
    steps_per_epoch = math.ceil(len(encoded) / spec.train.batch_size)
    total_steps = steps_per_epoch * spec.train.epochs
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=spec.train.learning_rate, weight_decay=spec.train.weight_decay
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total_steps * spec.train.warmup_ratio), total_steps)
    shuffler = torch.Generator().manual_seed(spec.train.seed)

    validation_texts = [e.text for e in splits["validation"]]
    validation_targets = [e.label for e in splits["validation"]]
    history = []
    step = 0
    for epoch in range(1, spec.train.epochs + 1):
        model.train()
        order = torch.randperm(len(encoded), generator=shuffler).tolist()
        running = 0.0
        for batch in _batches(encoded, order, spec.train.batch_size):
            loss = model(**collate(batch)).loss
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            running += loss.item()
            step += 1
            if step % 20 == 0 or step == total_steps:
                print(
                    f"epoch {epoch}/{spec.train.epochs} step {step}/{total_steps} "
                    f"loss {running / ((step - 1) % steps_per_epoch + 1):.4f} ({time.monotonic() - started:.0f}s)",
                    flush=True,
                )
        val_acc = accuracy(evaluate(model, tokenizer, validation_texts, spec.train.max_length), validation_targets)
        history.append({"epoch": epoch, "train_loss": running / steps_per_epoch, "validation_accuracy": val_acc})
        print(f"epoch {epoch}: validation accuracy {val_acc:.4f}", flush=True)
    train_seconds = time.monotonic() - started

    test_texts = [e.text for e in splits["test"]]
    test_targets = [e.label for e in splits["test"]]
    test_acc = accuracy(evaluate(model, tokenizer, test_texts, spec.train.max_length), test_targets)
    print(f"test accuracy {test_acc:.4f} on {len(test_texts)} articles", flush=True)

    # Write next to the final place and swap, so an interrupted run leaves no half checkpoint.
    staging = spec.checkpoint_dir.with_name("checkpoint.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(spec.checkpoint_dir, ignore_errors=True)
    staging.replace(spec.checkpoint_dir)

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    write_json(
        spec.artifact_dir / "metrics.json",
        {
            "model": spec.name,
            "strategy": spec.train.strategy,
            "test_accuracy": test_acc,
            "test_examples": len(test_texts),
            "validation_accuracy": history[-1]["validation_accuracy"],
            "train_examples": len(train_set),
            "epochs": history,
            "trainable_parameters": trainable,
            "total_parameters": total,
            "train_seconds": round(train_seconds, 1),
        },
    )


def main() -> None:
    train(from_cli(__doc__ or "train"))


if __name__ == "__main__":
    main()
