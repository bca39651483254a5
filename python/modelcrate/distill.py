"""Distil a fine-tuned text classifier, token classifier or sentence-embedding model into
a smaller student; write its checkpoint.

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

A sentence-embedding student (the teacher's sentence-transformers model with fewer
layers, its pooling and normalisation kept) matches the teacher's embeddings instead:
`soft_weight` × the cosine distance to the teacher's embedding of every title, body and
piece of the batch, and the rest × the teacher's own training loss on the batch's
title–body pairs (MultipleNegativesRankingLoss, scale 20). It has no temperature.

A token classifier's student matches the teacher's softened outputs on every token the
loss reads (special tokens and padding are left out) and the BIO labels, as a text
classifier's does per text; its training sentences are already short, so it takes no
pieces. Its metric is the pipeline's entity F1 (`aggregation_strategy="simple"`).

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


def student_of(teacher, keep: list[int], transformer=lambda model: model.base_model):
    """A copy of `teacher` whose transformer (`transformer(model)`: a classifier's base
    model, a sentence-transformers model's first module's) holds only its encoder layers
    `keep`, in order."""
    import copy

    from torch import nn

    layers = transformer(teacher).encoder.layer
    if not keep or sorted(set(keep)) != keep or keep[-1] >= len(layers):
        raise SystemExit(
            f"distill.keep_layers {keep} must be increasing layer indices of the teacher's {len(layers)} layers"
        )
    student = copy.deepcopy(teacher)
    encoder = transformer(student)
    encoder.encoder.layer = nn.ModuleList(encoder.encoder.layer[i] for i in keep)
    encoder.config.num_hidden_layers = len(keep)
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
    return [Example(piece, example.target) for example in examples for piece in pieces_of(example.text, per_text, rng)]


def pieces_of(text: str, count: int, rng: random.Random) -> list[str]:
    """`count` pieces of one to three consecutive sentences of `text`, drawn with `rng`;
    none from a text of one sentence."""
    sizes, weights = zip(*PIECE_SENTENCES)
    sentences = [s for s in SENTENCE_END.split(text.replace("\n", " ")) if s.strip()]
    if len(sentences) < 2:
        return []
    pieces = []
    for _ in range(count):
        size = min(rng.choices(sizes, weights)[0], len(sentences) - 1)
        start = rng.randrange(len(sentences) - size + 1)
        pieces.append(" ".join(sentences[start : start + size]))
    return pieces


def embedding_loss(student, teacher, pairs: int, soft_weight: float):
    """`soft_weight` × the mean cosine distance of each student embedding to the teacher's
    (`teacher` unit-length) + (1 − `soft_weight`) × MultipleNegativesRankingLoss over the
    batch's pairs: rows `[0, pairs)` are titles, `[pairs, 2·pairs)` their bodies."""
    import torch
    import torch.nn.functional as F

    student = F.normalize(student.float(), dim=-1)
    soft = (1.0 - (student * teacher).sum(dim=-1)).mean()
    scores = student[:pairs] @ student[pairs : 2 * pairs].T * MNRL_SCALE
    hard = F.cross_entropy(scores, torch.arange(pairs))
    return soft_weight * soft + (1.0 - soft_weight) * hard


# sentence-transformers' MultipleNegativesRankingLoss scale: cosine similarities × 20.
MNRL_SCALE = 20.0


def distill_embeddings(spec: Spec) -> None:
    """The sentence-embedding student (see the module's documentation)."""
    import torch
    import torch.nn.functional as F

    from . import embed

    config = spec.distill
    if not (spec.checkpoint_dir / "modules.json").is_file():
        raise SystemExit(f"no sentence-transformers checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    started = time.monotonic()
    seed_everything(spec.train.seed)
    teacher = embed.load_sentence_transformer(spec.checkpoint_dir, spec.train.max_length).eval()
    first = lambda model: model[0].auto_model  # noqa: E731 - the module holding the transformer
    student = student_of(teacher, list(config.keep_layers), first)
    teacher_layers = first(teacher).config.num_hidden_layers
    parameters = sum(p.numel() for p in student.parameters())
    print(f"student: layers {list(config.keep_layers)} of the teacher's {teacher_layers}, {parameters:,} parameters", flush=True)

    def pairs(name: str) -> tuple[list[str], list[str]]:
        rows = read_split(spec.data_dir, name)
        titles, bodies = zip(*(embed.title_and_body(row["text"]) for row in rows), strict=True)
        return list(titles), list(bodies)

    titles, bodies = pairs("train")
    # Pieces of each body, kept by article: a batch of articles brings its own pieces.
    rng = random.Random(spec.train.seed)
    pieces = [pieces_of(body, config.short_pieces, rng) for body in bodies]
    texts = titles + bodies + [piece for own in pieces for piece in own]
    with torch.inference_mode():
        targets = teacher.encode(texts, batch_size=32, convert_to_tensor=True)
    targets = F.normalize(targets.float(), dim=-1)
    first_piece = [2 * len(titles)]
    for own in pieces:
        first_piece.append(first_piece[-1] + len(own))
    validation_titles, validation_bodies = pairs("validation")
    test_titles, test_bodies = pairs("test")
    teacher_test = embed.retrieval(teacher, test_titles, test_bodies)
    del teacher
    print(f"teacher embeddings of {len(texts)} texts ({time.monotonic() - started:.0f}s)", flush=True)

    def loss_of(batch: list[int]):
        rows = ([i for i in batch] + [len(titles) + i for i in batch]
                + [j for i in batch for j in range(first_piece[i], first_piece[i + 1])])
        features = student.tokenize([texts[row] for row in rows])
        embeddings = student(features)["sentence_embedding"]
        return embedding_loss(embeddings, targets[rows], len(batch), config.soft_weight)

    def validation(epoch: int) -> dict:
        found = embed.retrieval(student, validation_titles, validation_bodies)
        print(f"epoch {epoch}: validation recall@1 {found['recall_at_1']:.4f}, @10 {found['recall_at_10']:.4f}", flush=True)
        return {k: found[k] for k in ("recall_at_1", "recall_at_10")}

    schedule = dataclasses.replace(spec.train, epochs=config.epochs, learning_rate=config.learning_rate)
    history = fit(student, dataclasses.replace(spec, train=schedule), len(titles), loss_of, validation, started)
    train_seconds = time.monotonic() - started
    test = embed.retrieval(student, test_titles, test_bodies)
    print(
        f"student test recall@10 {test['recall_at_10']:.4f} (@1 {test['recall_at_1']:.4f}), "
        f"teacher {teacher_test['recall_at_10']:.4f} (@1 {teacher_test['recall_at_1']:.4f})",
        flush=True,
    )
    save_student(spec, student)
    write_json(
        spec.student_dir / "metrics.json",
        {
            "model": spec.name,
            "kept_layers": list(config.keep_layers),
            "teacher_layers": teacher_layers,
            "parameters": parameters,
            "metric": "recall_at_10",
            "test_recall_at_1": test["recall_at_1"],
            "test_recall_at_10": test["recall_at_10"],
            "teacher_test_recall_at_1": teacher_test["recall_at_1"],
            "teacher_test_recall_at_10": teacher_test["recall_at_10"],
            "test_examples": len(test_titles),
            "train_examples": len(titles),
            "short_pieces": len(texts) - 2 * len(titles),
            "soft_weight": config.soft_weight,
            "epochs": history,
            "train_seconds": round(train_seconds, 1),
        },
    )


def token_distillation_loss(student_logits, teacher_logits, labels, temperature: float, soft_weight: float):
    """[`distillation_loss`] over the tokens whose label the loss reads (`labels` ≠ −100:
    not special tokens, not padding), each token one row."""
    read = labels != -100
    return distillation_loss(student_logits[read], teacher_logits[read], labels[read], False, temperature, soft_weight)


def distill_tokens(spec: Spec) -> None:
    """The token classifier's student (see the module's documentation)."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

    from . import ner, release_notes

    config = spec.distill
    if not (spec.checkpoint_dir / "config.json").is_file():
        raise SystemExit(f"no checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    started = time.monotonic()
    seed_everything(spec.train.seed)
    tokenizer = AutoTokenizer.from_pretrained(spec.checkpoint_dir)
    teacher = AutoModelForTokenClassification.from_pretrained(spec.checkpoint_dir).eval()
    student = student_of(teacher, list(config.keep_layers))
    teacher_layers = teacher.config.num_hidden_layers
    parameters = sum(p.numel() for p in student.parameters())
    print(f"student: layers {list(config.keep_layers)} of the teacher's {teacher_layers}, {parameters:,} parameters", flush=True)

    rows = {name: release_notes.read_split(spec.data_dir, name) for name in ("train", "validation", "test")}
    encoded = ner.encode(tokenizer, rows["train"], spec.train.max_length)
    collate = DataCollatorForTokenClassification(tokenizer)
    # The teacher's logits per token, once, in fp32, unpadded.
    soft_targets = []
    with torch.inference_mode():
        for start in range(0, len(encoded), 32):
            chunk = encoded[start : start + 32]
            logits = teacher(**collate([{k: v for k, v in f.items() if k != "labels"} for f in chunk])).logits
            soft_targets += [row[: len(f["input_ids"])].float() for row, f in zip(logits, chunk, strict=True)]
    teacher_test, _ = ner.evaluate(ner.entity_pipeline(teacher, tokenizer), rows["test"])
    del teacher
    print(f"teacher outputs for {len(encoded)} training sentences ({time.monotonic() - started:.0f}s)", flush=True)

    def loss_of(batch: list[int]):
        features = collate([encoded[i] for i in batch])
        labels = features.pop("labels")
        teacher_logits = torch.nn.utils.rnn.pad_sequence([soft_targets[i] for i in batch], batch_first=True)
        logits = student(**features).logits
        return token_distillation_loss(logits, teacher_logits, labels, config.temperature, config.soft_weight)

    tagger = ner.entity_pipeline(student, tokenizer)

    def validation(epoch: int) -> dict:
        scores, _ = ner.evaluate(tagger, rows["validation"])
        print(f"epoch {epoch}: validation entity F1 {scores['f1']:.4f}", flush=True)
        return {"validation_entity_f1": scores["f1"]}

    schedule = dataclasses.replace(spec.train, epochs=config.epochs, learning_rate=config.learning_rate)
    history = fit(student, dataclasses.replace(spec, train=schedule), len(encoded), loss_of, validation, started)
    train_seconds = time.monotonic() - started
    student.eval()
    test, _ = ner.evaluate(tagger, rows["test"])
    print(f"student test entity F1 {test['f1']:.4f}, teacher {teacher_test['f1']:.4f}, on {len(rows['test'])} sentences", flush=True)

    save_student(spec, student, tokenizer)
    write_json(
        spec.student_dir / "metrics.json",
        {
            "model": spec.name,
            "kept_layers": list(config.keep_layers),
            "teacher_layers": teacher_layers,
            "parameters": parameters,
            "metric": "entity_f1",
            "test_entity_f1": test["f1"],
            "teacher_test_entity_f1": teacher_test["f1"],
            "test_examples": len(rows["test"]),
            "train_examples": len(encoded),
            "temperature": config.temperature,
            "soft_weight": config.soft_weight,
            "epochs": history,
            "train_seconds": round(train_seconds, 1),
        },
    )


def save_student(spec: Spec, student, tokenizer=None) -> None:
    """The student (a `transformers` model with its `tokenizer`, or a sentence-transformers
    model, which saves its own) into a staging folder, then the staging folder in place of
    `student/checkpoint`: a step killed midway leaves no half-written checkpoint."""
    checkpoint = spec.student_dir / "checkpoint"
    staging = checkpoint.with_name("checkpoint.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    if tokenizer is None:
        student.save(str(staging))
    else:
        student.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
    shutil.rmtree(checkpoint, ignore_errors=True)
    staging.replace(checkpoint)


def distill(spec: Spec) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    config = spec.distill
    if config is None:
        raise SystemExit(f"models/{spec.name}.toml has no [distill] section")
    if spec.task == "feature-extraction":
        return distill_embeddings(spec)
    if spec.task == "token-classification":
        return distill_tokens(spec)
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

    save_student(spec, student, tokenizer)
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
