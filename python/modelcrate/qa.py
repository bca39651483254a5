"""Extractive question answering: fine-tuning on the synthetic release questions, SQuAD's
exact match and F1, the static INT8's calibration on question–passage pairs, and the
golden outputs of the `transformers` question-answering pipeline. The xtask runs a
question-answering model's train, optimize and golden steps here (`--step`); its export
is every text model's (`export`, optimum's `question-answering` task).

Training is SQuAD 2.0's recipe: the question and the passage are one pair, a passage
longer than the window is cut into windows that overlap by `DOC_STRIDE` tokens, and each
window learns the start and end token of the answer, or the `[CLS]` token when the
answer is not inside it (an impossible question, or a window that misses the span).
Windows are batched by length (`by_length`), so that a few long passages do not pad
every batch.

Evaluation uses the pipeline itself, as a user would read answers off the model, with
`handle_impossible_answer=True` so that "no answer" can be predicted; answers are
compared with SQuAD's normalisation (lower case, no punctuation or articles, single
spaces): exact match, and the F1 of their words.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import re
import shutil
import string
import time
from pathlib import Path

from . import optimize, quantize, release_qa
from .fit import fit
from .spec import OFFLINE_ENV, Spec, base_model_path, load, seed_everything, write_json

# Tokens two consecutive windows of a long passage share, in training and in the
# pipeline's default (`doc_stride`, at most half the window).
DOC_STRIDE = 128

# Pipeline calls whose answers are recorded for each golden case, by the key the Rust
# side reads; a case may add its own (`parameters` in inputs.json).
PIPELINE_CALLS: dict[str, dict] = {
    "default": {},
    "impossible": {"handle_impossible_answer": True},
    "top_k_3": {"top_k": 3},
    "top_k_3_impossible": {"top_k": 3, "handle_impossible_answer": True},
    "unaligned": {"align_to_words": False},
    "short_answers": {"max_answer_len": 3, "top_k": 2},
    "small_windows": {"max_seq_len": 64, "doc_stride": 16, "top_k": 2},
}


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1_score(prediction: str, truth: str) -> float:
    """SQuAD 2.0's F1 of two answers' words; an empty answer scores 1 only against another."""
    predicted, true = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not predicted or not true:
        return float(predicted == true)
    common = collections.Counter(predicted) & collections.Counter(true)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(true)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: list[str], rows: list[dict]) -> dict:
    """Exact match and F1 over `rows` (each against its best gold answer, "" when none),
    overall and for the answerable and impossible questions apart."""
    exact, f1, kinds = [], [], []
    for prediction, row in zip(predictions, rows, strict=True):
        truths = [answer["text"] for answer in row["answers"]] or [""]
        exact.append(max(float(normalize_answer(prediction) == normalize_answer(t)) for t in truths))
        f1.append(max(f1_score(prediction, t) for t in truths))
        kinds.append("impossible" if not row["answers"] else "answerable")

    def mean(values: list[float], kind: str | None = None) -> float:
        chosen = [v for v, k in zip(values, kinds, strict=True) if kind in (None, k)]
        return sum(chosen) / len(chosen) if chosen else 0.0

    return {
        "exact_match": mean(exact),
        "f1": mean(f1),
        "answerable": {"exact_match": mean(exact, "answerable"), "f1": mean(f1, "answerable"), "count": kinds.count("answerable")},
        "impossible": {"exact_match": mean(exact, "impossible"), "count": kinds.count("impossible")},
        "questions": len(rows),
    }


def answer_pipeline(model, tokenizer):
    from transformers import pipeline

    return pipeline("question-answering", model=model, tokenizer=tokenizer, device=-1)


def plain(answer) -> list[dict] | dict:
    """A pipeline answer as plain JSON values (numpy scalars to Python numbers)."""
    if isinstance(answer, list):
        return [plain(a) for a in answer]
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in answer.items()}


def evaluate(answerer, rows: list[dict]) -> tuple[dict, list[str]]:
    """SQuAD scores of the pipeline's best answers (no answer allowed), and those answers."""
    predictions = [
        answerer(question=row["question"], context=row["context"], handle_impossible_answer=True)["answer"]
        for row in rows
    ]
    return squad_scores(predictions, rows), predictions


def windows(tokenizer, rows: list[dict], max_length: int) -> list[dict]:
    """Every window of every row with its answer's start and end token (0, the `[CLS]`
    token, when the window does not hold the answer): what training learns from."""
    encoded = tokenizer(
        [row["question"] for row in rows],
        [row["context"] for row in rows],
        truncation="only_second",
        max_length=max_length,
        stride=DOC_STRIDE,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    features = []
    for window, row_index in enumerate(encoded["overflow_to_sample_mapping"]):
        row = rows[row_index]
        sequence = encoded.sequence_ids(window)
        offsets = encoded["offset_mapping"][window]
        start_token = end_token = 0
        if row["answers"]:
            first = row["answers"][0]
            start_char, end_char = first["start"], first["start"] + len(first["text"])
            context = [i for i, s in enumerate(sequence) if s == 1]
            if offsets[context[0]][0] <= start_char and offsets[context[-1]][1] >= end_char:
                start_token = next(i for i in context if offsets[i][1] > start_char)
                end_token = next(i for i in reversed(context) if offsets[i][0] < end_char)
        features.append(
            {
                "input_ids": encoded["input_ids"][window],
                "token_type_ids": encoded["token_type_ids"][window],
                "attention_mask": encoded["attention_mask"][window],
                "start_positions": start_token,
                "end_positions": end_token,
            }
        )
    return features


def by_length(features: list[dict], batch_size: int, seed: int) -> list[list[int]]:
    """The windows cut into batches of like length, so that a few long passages do not pad
    every batch: shuffled (seeded), then each run of 50 batches' worth sorted by length and
    cut (the Hugging Face Trainer's `group_by_length`). `fit` shuffles the batches."""
    import random

    order = list(range(len(features)))
    random.Random(seed).shuffle(order)
    run = batch_size * 50
    batches = []
    for start in range(0, len(order), run):
        chunk = sorted(order[start : start + run], key=lambda i: len(features[i]["input_ids"]), reverse=True)
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return batches


def train(spec: Spec) -> None:
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding

    if spec.train.strategy != "full":
        raise SystemExit(f"strategy `{spec.train.strategy}` is not implemented for {spec.task}")
    started = time.monotonic()
    seed_everything(spec.train.seed)

    splits = release_qa.generate(spec.data.split_seed, spec.data.test_fraction, spec.data.validation_fraction)
    release_qa.write_splits(spec.data_dir, splits)
    print(
        "data (synthetic): "
        + ", ".join(
            f"{name} {len(questions)} questions ({sum(q.impossible for q in questions)} without an answer, "
            f"{sum(q.long for q in questions)} long passages)"
            for name, questions in splits.items()
        ),
        flush=True,
    )

    base = base_model_path(spec)
    tokenizer = AutoTokenizer.from_pretrained(base)
    # The pipeline's windows default to this length (`max_seq_len`), as training's do.
    tokenizer.model_max_length = spec.train.max_length
    model = AutoModelForQuestionAnswering.from_pretrained(base)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    rows = {name: [row_of(q) for q in questions] for name, questions in splits.items()}
    features = windows(tokenizer, rows["train"], spec.train.max_length)
    print(f"training windows: {len(features)} from {len(rows['train'])} questions", flush=True)
    collate = DataCollatorWithPadding(tokenizer)
    answerer = answer_pipeline(model, tokenizer)

    def validation(epoch: int) -> dict:
        scores, _ = evaluate(answerer, rows["validation"])
        print(f"epoch {epoch}: validation exact match {scores['exact_match']:.4f}, F1 {scores['f1']:.4f}", flush=True)
        return {"validation_exact_match": scores["exact_match"], "validation_f1": scores["f1"]}

    batches = by_length(features, spec.train.batch_size, spec.train.seed)
    # `fit` shuffles and walks batch indices one at a time: a spec whose batch is one
    # index, each standing for a batch of windows of like length.
    one_per_step = dataclasses.replace(spec, train=dataclasses.replace(spec.train, batch_size=1))
    history = fit(
        model,
        one_per_step,
        len(batches),
        lambda step: model(**collate([features[i] for i in batches[step[0]]])).loss,
        validation,
        started,
    )
    train_seconds = time.monotonic() - started

    test, _ = evaluate(answerer, rows["test"])
    print(
        f"test exact match {test['exact_match']:.4f}, F1 {test['f1']:.4f} on {test['questions']} questions "
        f"with held-out sentences, phrasings and products ({test['impossible']['count']} without an answer: "
        f"{test['impossible']['exact_match']:.4f} right)",
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
            "metric": "f1",
            "test_exact_match": test["exact_match"],
            "test_f1": test["f1"],
            "test_scores": test,
            "test_examples": len(rows["test"]),
            "train_examples": len(rows["train"]),
            "train_windows": len(features),
            "epochs": history,
            "trainable_parameters": trainable,
            "total_parameters": total,
            "train_seconds": round(train_seconds, 1),
        },
    )


def row_of(question: release_qa.Question) -> dict:
    return {"id": question.id, "question": question.question, "context": question.context, "answers": question.answers}


def golden(spec: Spec, cases: list[dict], digest: str, checkpoint: Path | None = None) -> dict:
    """Per case: each window's token ids and PyTorch's start and end logits (the window
    alone), and the pipeline's answer for every recorded call (and the case's own); every
    case in one pipeline call; and the pipeline's answers and SQuAD scores over the test
    split; from `checkpoint` (the fine-tuned model's unless another is given)."""
    import torch
    import transformers
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    checkpoint = checkpoint or spec.checkpoint_dir
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForQuestionAnswering.from_pretrained(checkpoint).eval()
    answerer = answer_pipeline(model, tokenizer)
    max_length = tokenizer.model_max_length
    stride = min(max_length // 2, DOC_STRIDE)

    records = []
    with torch.inference_mode():
        for case in cases:
            encoded = tokenizer(
                case["question"],
                case["context"],
                truncation="only_second",
                max_length=max_length,
                stride=stride,
                return_overflowing_tokens=True,
            )
            windows_out = []
            for ids, types in zip(encoded["input_ids"], encoded["token_type_ids"], strict=True):
                output = model(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types]))
                windows_out.append(
                    {"input_ids": ids, "start_logits": output.start_logits[0].tolist(), "end_logits": output.end_logits[0].tolist()}
                )
            calls = {**PIPELINE_CALLS, **({"own": case["parameters"]} if "parameters" in case else {})}
            answers = {
                key: plain(answerer(question=case["question"], context=case["context"], **params)) for key, params in calls.items()
            }
            records.append({**case, "windows": windows_out, "pipeline": answers})
        batch = plain(answerer(question=[c["question"] for c in cases], context=[c["context"] for c in cases]))
        test_rows = release_qa.read_split(spec.data_dir, "test")
        test, predictions = evaluate(answerer, test_rows)
    print(
        f"golden: {len(records)} cases; PyTorch test exact match {test['exact_match']:.4f}, F1 {test['f1']:.4f} ({checkpoint})",
        flush=True,
    )
    return {
        "about": "transformers question-answering pipeline outputs, written by `cargo xtask golden` from the checkpoint named here.",
        "model": spec.name,
        "checkpoint_sha256": digest,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "max_seq_len": max_length,
        "doc_stride": stride,
        "pipeline_calls": PIPELINE_CALLS,
        "cases": records,
        "batch": {"ids": [case["id"] for case in cases], "pipeline": batch},
        "test_split": {"examples": len(test_rows), "exact_match": test["exact_match"], "f1": test["f1"], "scores": test, "answers": predictions},
    }


def calibration_feeds(spec: Spec, source: Path) -> list[dict]:
    """Seeded question–passage pairs of the training split as the input feeds of `source`,
    one at a time and each cut to its first window, as the pipeline feeds the model."""
    import random

    import numpy as np
    import onnx
    from tokenizers import Tokenizer

    rows = release_qa.read_split(spec.data_dir, "train")
    chosen = random.Random(spec.train.seed).sample(rows, min(2 * quantize.CALIBRATION_PAIRS, len(rows)))
    wanted = {i.name for i in onnx.load(str(source), load_external_data=False).graph.input}
    tokenizer = Tokenizer.from_file(str(source.parent / "tokenizer.json"))
    tokenizer.enable_truncation(spec.train.max_length, strategy="only_second")
    tokenizer.no_padding()
    feeds = []
    for row in chosen:
        encoding = tokenizer.encode(row["question"], row["context"])
        feed = {
            "input_ids": np.array([encoding.ids], np.int64),
            "attention_mask": np.array([encoding.attention_mask], np.int64),
            "token_type_ids": np.array([encoding.type_ids], np.int64),
        }
        feeds.append({name: value for name, value in feed.items() if name in wanted})
    return feeds


def optimize_step(spec: Spec) -> None:
    """Every text model's variants, the static INT8 calibrated on question–passage pairs
    (a question-answering model's inputs are pairs, with token types)."""
    fp32 = spec.onnx_dir / "model.onnx"

    def static_of_pairs(target: Path) -> dict:
        feeds = calibration_feeds(spec, fp32)
        quantize.static(fp32, target, feeds, op_types=["MatMul"])
        return {"calibration": {"texts": len(feeds), "from": "training split, question–passage pairs, first window"}}

    recipes, int8_config = optimize.recipes(spec)
    recipes = [
        (name, file, kind, f"{quantize.STATIC_HOW} on training-split question–passage pairs, MatMuls only, of the FP32 graph", static_of_pairs)
        if name == "int8-static"
        else (name, file, kind, how, make)
        for name, file, kind, how, make in recipes
    ]
    optimize.write_variants(spec, recipes, int8_config)


def golden_step(spec: Spec) -> None:
    from .golden import checkpoint_digest

    seed_everything(spec.train.seed)
    if not (spec.checkpoint_dir / "config.json").is_file():
        raise SystemExit(f"no checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    cases = json.loads((spec.golden_dir / "inputs.json").read_text(encoding="utf-8"))["cases"]
    write_json(spec.golden_dir / "reference.json", golden(spec, cases, checkpoint_digest(spec.checkpoint_dir)))


STEPS = {"train": train, "optimize": optimize_step, "golden": golden_step}


def main() -> None:
    parser = argparse.ArgumentParser(description="A question-answering model's train, optimize and golden steps.")
    parser.add_argument("--spec", type=Path, required=True, help="resolved spec JSON written by the xtask")
    parser.add_argument("--step", choices=sorted(STEPS), required=True)
    args = parser.parse_args()
    os.environ.update(OFFLINE_ENV)
    STEPS[args.step](load(args.spec))


if __name__ == "__main__":
    main()
