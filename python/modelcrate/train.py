"""Fine-tune a model from its spec; write the checkpoint and metrics.json.

Text classifiers are fine-tuned here, by one of three strategies: `full` (every weight),
`lora` (PEFT LoRA adapters on the attention's query and value projections plus the
classifier head, merged into the weights with `merge_and_unload` before saving, so the
export is an ordinary model) or `head-only` (the backbone frozen, the classifier head
trained). Sentence-embedding models are trained in `embed`, entity taggers in `ner`,
SetFit classifiers in `fewshot`.

Data is BBC News (one topic per article) or, for a multi-label model, the synthetic
release text's topics (see `release_notes`). Writes
`artifacts/<name>/data/{train,validation,test}.jsonl` (the split, so later steps and the
Rust parity check see the same examples), `checkpoint/` (safetensors,
config.json with id2label, tokenizer) and `metrics.json`.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import Callable

from . import bbc, release_notes
from .fit import fit
from .spec import Spec, base_model_path, from_cli, seed_everything, write_json


@dataclass(frozen=True)
class Example:
    text: str
    # A label id, or for a multi-label model one 0/1 float per label.
    target: int | list[float]


def load_data(spec: Spec) -> tuple[list[str], dict[str, list[Example]]]:
    """Labels and the train/validation/test split of the spec's source, written to
    `data/` for the later steps: BBC topics, or the synthetic release text's topics
    (several, one or none per sentence) for a multi-label model."""
    if spec.data.source == "release-notes-synthetic":
        if not multi_label(spec):
            raise SystemExit(f"{spec.name}: the release-notes topics are multi-label: set problem_type")
        sentences = release_notes.generate(spec.data.split_seed, spec.data.test_fraction, spec.data.validation_fraction)
        release_notes.write_splits(spec.data_dir, sentences)
        labels = release_notes.TOPICS
        hot = lambda s: [1.0 if label in s.topics else 0.0 for label in labels]  # noqa: E731
        return labels, {name: [Example(s.text, hot(s)) for s in split] for name, split in sentences.items()}
    labels, splits = bbc.split(spec)
    bbc.write_splits(spec.data_dir, labels, splits)
    return labels, {name: [Example(e.text, e.label) for e in split] for name, split in splits.items()}


def multi_label(spec: Spec) -> bool:
    return spec.problem_type == "multi_label_classification"


def label_ids(target: int | list[float]) -> int | list[int]:
    """A target as the predictions are: a label id, or the ids of the labels that apply."""
    return target if isinstance(target, int) else [i for i, v in enumerate(target) if v >= 0.5]


def evaluate(
    model, tokenizer, texts: list[str], max_length: int, batch_size: int = 32
) -> list[int] | list[list[int]]:
    """Predictions, batched with padding as a user's evaluation would be: the top-1 label
    id, or for a multi-label model the ids whose sigmoid score is at least 0.5 (the
    pipeline's default function for it)."""
    import torch

    multi = model.config.problem_type == "multi_label_classification"
    predictions: list = []
    for logits in batched_logits(model, tokenizer, texts, max_length, batch_size):
        if multi:
            chosen = torch.sigmoid(logits) >= 0.5
            predictions.extend([row.nonzero().flatten().tolist() for row in chosen])
        else:
            predictions.extend(logits.argmax(dim=-1).tolist())
    return predictions


def batched_logits(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 32):
    """The model's logits for `texts` in eval mode, one tensor per padded batch, in order."""
    import torch

    model.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            yield model(**batch).logits


def validation(model, tokenizer, examples: list[Example], max_length: int) -> Callable[[int], dict]:
    """The evaluation `fit` runs after each epoch: accuracy on the validation split."""
    texts = [e.text for e in examples]
    targets = [label_ids(e.target) for e in examples]

    def evaluate_epoch(epoch: int) -> dict:
        value = accuracy(evaluate(model, tokenizer, texts, max_length), targets)
        print(f"epoch {epoch}: validation accuracy {value:.4f}", flush=True)
        return {"validation_accuracy": value}

    return evaluate_epoch


def accuracy(predictions: list, targets: list) -> float:
    """Share of exact matches: the label, or for a multi-label model the whole label set."""
    return sum(p == t for p, t in zip(predictions, targets, strict=True)) / len(targets)


def micro_f1(predictions: list[list[int]], targets: list[list[int]]) -> float:
    """Micro-averaged F1 over every (example, label) decision of a multi-label model."""
    found = sum(len(set(p) & set(t)) for p, t in zip(predictions, targets, strict=True))
    predicted, actual = sum(map(len, predictions)), sum(map(len, targets))
    return 2 * found / (predicted + actual) if predicted + actual else 0.0


# LoRA as Modelcrate runs it; the model card states these.
LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": ["query", "value"]}


def prepare(model, strategy: str):
    """The model to train under `strategy`: frozen parts frozen, adapters added."""
    if strategy == "full":
        return model
    if strategy == "head-only":
        for parameter in model.base_model.parameters():
            parameter.requires_grad_(False)
        return model
    if strategy == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        # SEQ_CLS keeps the new classifier head fully trainable next to the adapters.
        return get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, **LORA))
    raise SystemExit(f"strategy `{strategy}` is not implemented for text classification")


def train(spec: Spec) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    started = time.monotonic()
    seed_everything(spec.train.seed)

    labels, splits = load_data(spec)
    print(f"data: {', '.join(f'{k} {len(v)}' for k, v in splits.items())} examples; labels {labels}", flush=True)

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
    model = prepare(model, spec.train.strategy)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    print(f"{spec.train.strategy}: {trainable:,} of {total:,} parameters trained ({100 * trainable / total:.2f} %)", flush=True)

    train_set = splits["train"]
    encoded = [
        {**tokenizer(e.text, truncation=True, max_length=spec.train.max_length), "labels": e.target} for e in train_set
    ]
    collate = DataCollatorWithPadding(tokenizer)
    history = fit(
        model,
        spec,
        len(encoded),
        lambda batch: model(**collate([encoded[i] for i in batch])).loss,
        validation(model, tokenizer, splits["validation"], spec.train.max_length),
        started,
    )
    train_seconds = time.monotonic() - started
    if spec.train.strategy == "lora":
        # Fold the adapters into the weights: what is tested, saved and exported is a plain model.
        model = model.merge_and_unload()

    test_texts = [e.text for e in splits["test"]]
    test_targets = [label_ids(e.target) for e in splits["test"]]
    test_predictions = evaluate(model, tokenizer, test_texts, spec.train.max_length)
    test_acc = accuracy(test_predictions, test_targets)
    test_f1 = micro_f1(test_predictions, test_targets) if multi_label(spec) else None
    print(f"test accuracy {test_acc:.4f} on {len(test_texts)} examples" + (f", micro-F1 {test_f1:.4f}" if test_f1 is not None else ""), flush=True)

    # Write next to the final place and swap, so an interrupted run leaves no half checkpoint.
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
            "test_accuracy": test_acc,
            "test_micro_f1": test_f1,
            "test_examples": len(test_texts),
            "validation_accuracy": history[-1]["validation_accuracy"],
            "train_examples": len(train_set),
            "epochs": history,
            "trainable_parameters": trainable,
            "total_parameters": total,
            "lora": LORA if spec.train.strategy == "lora" else None,
            "train_seconds": round(train_seconds, 1),
        },
    )


def main() -> None:
    spec = from_cli(__doc__ or "train")
    if spec.train.strategy == "setfit":
        from . import fewshot

        fewshot.train(spec)
    elif spec.task == "feature-extraction":
        from . import embed

        embed.train(spec)
    elif spec.task == "token-classification":
        from . import ner

        ner.train(spec)
    else:
        train(spec)


if __name__ == "__main__":
    main()
