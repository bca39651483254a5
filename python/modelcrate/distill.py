"""Distil a fine-tuned text classifier into a smaller student; write its checkpoint.

The student is the teacher with fewer transformer layers: the spec's `[distill]
keep_layers` (say 0, 2 and 4 of MiniLM's 6) are copied from the fine-tuned teacher with
its embeddings, pooler and classifier head, so it starts close to the teacher and shares
its tokenizer, labels and ONNX signature (the same generated crate loads it). It is then
trained over the training split on a mix of two losses: the teacher's softened outputs
(temperature `T`, the loss scaled by T² as Hinton et al. do so that its gradients keep
their size) with weight `soft_weight`, and the true labels with the rest. A single-label
model matches the teacher's softmax (KL divergence); a multi-label one its sigmoids
(binary cross-entropy against the teacher's probabilities).

Users send short texts as well as whole articles, and a student learns the teacher's
answers only where it is shown them: with `short_pieces = n`, n pieces of each training
text (one to three consecutive sentences, as users' single sentences and short paragraphs
are) join what it learns from, labelled by the teacher's outputs and their text's label.
Pieces come from the training split only, drawn with the training seed.

The teacher's outputs are computed once, in fp32, before training. The optimisation loop
is `fit`'s (seeded shuffle, AdamW, warmup, the spec's `[train]` batch size and precision)
with `[distill]`'s epochs and learning rate. Writes `artifacts/<name>/student/checkpoint/`
and `student/metrics.json` (the student's test metric beside the teacher's, which the
parity gate holds it to).
"""

from __future__ import annotations

import dataclasses
import random
import re
import shutil
import time

from .bbc import read_split
from .fit import fit
from .spec import Spec, from_cli, seed_everything, write_json
from .train import Example, accuracy, batched_logits, evaluate, label_ids, micro_f1, multi_label, validation


def student_of(teacher, keep: list[int]):
    """A copy of `teacher` holding only its encoder layers `keep`, in order."""
    import copy

    from torch import nn

    layers = teacher.base_model.encoder.layer
    if not keep or sorted(set(keep)) != keep or keep[-1] >= len(layers):
        raise SystemExit(
            f"distill.keep_layers {keep} must be increasing layer indices of the teacher's {len(layers)} layers"
        )
    student = copy.deepcopy(teacher)
    student.base_model.encoder.layer = nn.ModuleList(student.base_model.encoder.layer[i] for i in keep)
    student.config.num_hidden_layers = len(keep)
    return student


def distillation_loss(student_logits, teacher_logits, targets, multi: bool, temperature: float, soft_weight: float):
    """`soft_weight` × T² × (the student's divergence from the teacher's softened outputs)
    + (1 − `soft_weight`) × the loss on the true labels."""
    import torch.nn.functional as F

    t = temperature
    student_logits = student_logits.float()
    if multi:
        soft = F.binary_cross_entropy_with_logits(student_logits / t, (teacher_logits / t).sigmoid())
        hard = F.binary_cross_entropy_with_logits(student_logits, targets)
    else:
        soft = F.kl_div(F.log_softmax(student_logits / t, dim=-1), F.log_softmax(teacher_logits / t, dim=-1),
                        reduction="batchmean", log_target=True)
        hard = F.cross_entropy(student_logits, targets)
    return soft_weight * t * t * soft + (1.0 - soft_weight) * hard


def split_examples(spec: Spec, name: str, labels: list[str]) -> list[Example]:
    """A split as `train` wrote it to `data/`: a BBC row's label id, or a multi-label row's
    topics as one 0/1 float per label."""
    rows = read_split(spec.data_dir, name)
    if multi_label(spec):
        return [Example(row["text"], [1.0 if label in row["topics"] else 0.0 for label in labels]) for row in rows]
    return [Example(row["text"], row["label_id"]) for row in rows]


# How many consecutive sentences a piece holds, with their chances (as the bench's
# mixed-short workload draws them).
PIECE_SENTENCES = ((1, 0.55), (2, 0.30), (3, 0.15))
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def short_pieces(examples: list[Example], per_text: int, seed: int) -> list[Example]:
    """`per_text` pieces of one to three consecutive sentences of each text, each with its
    text's target; a text of one sentence gives none."""
    rng = random.Random(seed)
    sizes, weights = zip(*PIECE_SENTENCES)
    pieces = []
    for example in examples:
        sentences = [s for s in SENTENCE_END.split(example.text.replace("\n", " ")) if s.strip()]
        if len(sentences) < 2:
            continue
        for _ in range(per_text):
            size = min(rng.choices(sizes, weights)[0], len(sentences) - 1)
            start = rng.randrange(len(sentences) - size + 1)
            pieces.append(Example(" ".join(sentences[start : start + size]), example.target))
    return pieces


def distill(spec: Spec) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    config = spec.distill
    if config is None:
        raise SystemExit(f"models/{spec.name}.toml has no [distill] section")
    if not (spec.checkpoint_dir / "config.json").is_file():
        raise SystemExit(f"no checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    started = time.monotonic()
    seed_everything(spec.train.seed)

    tokenizer = AutoTokenizer.from_pretrained(spec.checkpoint_dir)
    teacher = AutoModelForSequenceClassification.from_pretrained(spec.checkpoint_dir).eval()
    student = student_of(teacher, list(config.keep_layers))
    labels = [teacher.config.id2label[i] for i in range(teacher.config.num_labels)]
    splits = {name: split_examples(spec, name, labels) for name in ("train", "validation", "test")}
    multi = multi_label(spec)
    teacher_layers = teacher.config.num_hidden_layers
    parameters = sum(p.numel() for p in student.parameters())
    print(
        f"student: layers {list(config.keep_layers)} of the teacher's {teacher_layers}, "
        f"{parameters:,} parameters ({100 * parameters / sum(p.numel() for p in teacher.parameters()):.0f} % of the teacher)",
        flush=True,
    )

    train_set = splits["train"] + short_pieces(splits["train"], config.short_pieces, spec.train.seed)
    texts = [e.text for e in train_set]
    # The teacher's outputs, once, in fp32.
    soft_targets = torch.cat(list(batched_logits(teacher, tokenizer, texts, spec.train.max_length)))
    test_texts = [e.text for e in splits["test"]]
    test_targets = [label_ids(e.target) for e in splits["test"]]
    # The teacher's test metric, for the student's beside it: measured here, as train
    # measured it, rather than read from train's metrics.json, whose timings would re-key
    # this step each time the teacher is retrained to the same checkpoint.
    teacher_accuracy = accuracy(evaluate(teacher, tokenizer, test_texts, spec.train.max_length), test_targets)
    del teacher
    print(
        f"teacher outputs for {len(texts)} texts: {len(splits['train'])} training texts and "
        f"{len(texts) - len(splits['train'])} pieces of them ({time.monotonic() - started:.0f}s)",
        flush=True,
    )
    encoded = [tokenizer(text, truncation=True, max_length=spec.train.max_length) for text in texts]
    collate = DataCollatorWithPadding(tokenizer)
    hard_targets = torch.tensor([e.target for e in train_set], dtype=torch.float32 if multi else torch.long)

    def loss_of(batch: list[int]):
        logits = student(**collate([encoded[i] for i in batch])).logits
        return distillation_loss(
            logits, soft_targets[batch], hard_targets[batch], multi, config.temperature, config.soft_weight
        )

    schedule = dataclasses.replace(spec.train, epochs=config.epochs, learning_rate=config.learning_rate)
    evaluate_epoch = validation(student, tokenizer, splits["validation"], spec.train.max_length)
    history = fit(student, dataclasses.replace(spec, train=schedule), len(encoded), loss_of, evaluate_epoch, started)
    train_seconds = time.monotonic() - started

    predictions = evaluate(student, tokenizer, test_texts, spec.train.max_length)
    test_accuracy = accuracy(predictions, test_targets)
    test_f1 = micro_f1(predictions, test_targets) if multi else None
    print(
        f"student test accuracy {test_accuracy:.4f}, teacher {teacher_accuracy:.4f}, "
        f"on {len(test_texts)} examples",
        flush=True,
    )

    checkpoint = spec.student_dir / "checkpoint"
    staging = checkpoint.with_name("checkpoint.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    student.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(checkpoint, ignore_errors=True)
    staging.replace(checkpoint)
    write_json(
        spec.student_dir / "metrics.json",
        {
            "model": spec.name,
            "kept_layers": list(config.keep_layers),
            "teacher_layers": teacher_layers,
            "parameters": parameters,
            "test_accuracy": test_accuracy,
            "test_micro_f1": test_f1,
            "teacher_test_accuracy": teacher_accuracy,
            "test_examples": len(test_texts),
            "train_examples": len(splits["train"]),
            "short_pieces": len(train_set) - len(splits["train"]),
            "temperature": config.temperature,
            "soft_weight": config.soft_weight,
            "epochs": history,
            "train_seconds": round(train_seconds, 1),
        },
    )


def main() -> None:
    distill(from_cli(__doc__ or "distill"))


if __name__ == "__main__":
    main()
