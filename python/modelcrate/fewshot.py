"""Few-shot text classification with SetFit: training, the head's ONNX export, and the
golden outputs.

SetFit trains in two phases. The body (a sentence-transformers model) is fine-tuned
contrastively on pairs drawn from the few labelled examples: same label → similar,
different labels → dissimilar (`CosineSimilarityLoss`). Then a scikit-learn
`LogisticRegression` head is fitted on the tuned body's embeddings of the same examples.
A prediction is `head.predict_proba(body.encode(texts))`.

The body is exported like any sentence-embedding model (`last_hidden_state`, with its
pooling and normalisation in `pooling.json`); the head with `skl2onnx` as `head.onnx`,
`sentence_embedding [batch, dimension]` → `label [batch]`, `logits [batch, labels]`. Its
`logits` are the head's `decision_function`: for a multinomial logistic regression,
`predict_proba` is exactly their softmax, so the served model is an ordinary text
classifier (the pipeline's `function_to_apply` keeps its meaning) whose default scores
are SetFit's probabilities.

The training set is `setfit.examples_per_class` articles per topic, drawn with the
spec's seed from the same training split the full fine-tune uses; validation and test
are that split's, so the accuracies compare.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

from . import bbc
from .fit import warn_if_bf16_is_emulated
from .spec import Spec, base_model_path, seed_everything, write_json

# `ai.onnx.ml` opset of the head: `LinearClassifier` is in version 1.
ML_OPSET = 1
# Largest |ONNX head - scikit-learn| on the export's check batch, in logits.
HEAD_EXPORT_TOLERANCE = 1e-5


def few_shot_sample(spec: Spec, examples: list[bbc.Example], labels: list[str]) -> list[bbc.Example]:
    """`examples_per_class` examples of each label, seeded, in label then corpus order."""
    assert spec.setfit is not None
    rng = random.Random(spec.train.seed)
    sample = []
    for label_id in range(len(labels)):
        of_label = [e for e in examples if e.label == label_id]
        if len(of_label) < spec.setfit.examples_per_class:
            raise SystemExit(
                f"models/{spec.name}.toml, setfit.examples_per_class: {spec.setfit.examples_per_class} "
                f"is more than the {len(of_label)} training examples of `{labels[label_id]}`"
            )
        chosen = sorted(rng.sample(range(len(of_label)), spec.setfit.examples_per_class))
        sample.extend(of_label[i] for i in chosen)
    return sample


def load(path: Path, max_length: int, labels: list[str] | None = None):
    from setfit import SetFitModel

    model = SetFitModel.from_pretrained(str(path), labels=labels, local_files_only=True)
    model.model_body.max_seq_length = max_length
    return model


def accuracy_of(model, examples: list[bbc.Example]) -> tuple[float, list[int]]:
    probabilities = model.predict_proba([e.text for e in examples], batch_size=32, as_numpy=True)
    predictions = probabilities.argmax(axis=1).tolist()
    correct = sum(p == e.label for p, e in zip(predictions, examples, strict=True))
    return correct / len(examples), predictions


def bf16_body_training(trainer) -> None:
    """The body's contrastive training under bf16 autocast, as `fit` runs every other
    strategy with `precision = "bf16"`. SetFit's own `use_amp` asks its transformers
    Trainer for fp16, which a CPU runs emulated; this sets the two attributes that Trainer
    reads around each forward pass (its `bf16=True` would have set them when it was built,
    which SetFit does before its arguments can say so). Backward passes and the AdamW
    update stay outside the autocast, the weights fp32."""
    import torch

    body_trainer = trainer.st_trainer
    if not hasattr(body_trainer, "use_cpu_amp"):
        raise SystemExit("setfit: this transformers Trainer has no `use_cpu_amp`; bf16 training needs the locked versions")
    warn_if_bf16_is_emulated()
    body_trainer.use_cpu_amp = True
    body_trainer.amp_dtype = torch.bfloat16


def train(spec: Spec) -> None:
    import numpy as np
    from datasets import Dataset
    from setfit import Trainer, TrainingArguments
    from sklearn.linear_model import LogisticRegression

    if spec.train.strategy != "setfit" or spec.setfit is None:
        raise SystemExit(f"{spec.name}: the SetFit steps need strategy `setfit` and a [setfit] section")
    started = time.monotonic()
    seed_everything(spec.train.seed)

    labels, splits = bbc.split(spec)
    few = few_shot_sample(spec, splits["train"], labels)
    bbc.write_splits(spec.data_dir, labels, {"train": few, "validation": splits["validation"], "test": splits["test"]})
    print(
        f"data: {len(few)} training examples ({spec.setfit.examples_per_class} per label), "
        f"validation {len(splits['validation'])}, test {len(splits['test'])}; labels {labels}",
        flush=True,
    )

    model = load(base_model_path(spec), spec.train.max_length, labels)
    texts, targets = [e.text for e in few], [e.label for e in few]

    # What the contrastive phase buys: the same head on the untuned body's embeddings.
    base_head = LogisticRegression().fit(model.model_body.encode(texts, convert_to_numpy=True), targets)
    test_embeddings = model.model_body.encode([e.text for e in splits["test"]], batch_size=32, convert_to_numpy=True)
    base_accuracy = float((base_head.predict(test_embeddings) == [e.label for e in splits["test"]]).mean())
    print(f"head on the untuned body: test accuracy {base_accuracy:.4f}", flush=True)

    # The trainer's own checkpoints are not kept: the model is saved once, below.
    scratch = spec.artifact_dir / "setfit-trainer.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    arguments = TrainingArguments(
        output_dir=str(scratch),
        save_strategy="no",
        batch_size=spec.train.batch_size,
        num_epochs=spec.train.epochs,
        num_iterations=spec.setfit.pair_iterations,
        body_learning_rate=spec.train.learning_rate,
        warmup_proportion=spec.train.warmup_ratio,
        max_length=spec.train.max_length,
        seed=spec.train.seed,
        show_progress_bar=False,
        logging_steps=10,
        report_to="none",
    )
    # setfit's default metric fetches a script from the hub: give it a callable.
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=Dataset.from_dict({"text": texts, "label": targets}),
        metric=lambda predicted, expected: {"accuracy": float(np.mean(np.asarray(predicted) == np.asarray(expected)))},
    )
    if spec.train.precision == "bf16":
        bf16_body_training(trainer)
    trainer.train()
    shutil.rmtree(scratch, ignore_errors=True)
    train_seconds = time.monotonic() - started
    pairs = len(few) * spec.setfit.pair_iterations * 2

    validation_accuracy, _ = accuracy_of(model, splits["validation"])
    test_accuracy, _ = accuracy_of(model, splits["test"])
    print(
        f"SetFit: validation accuracy {validation_accuracy:.4f}, test accuracy {test_accuracy:.4f} "
        f"on {len(splits['test'])} examples ({train_seconds:.0f}s)",
        flush=True,
    )

    staging = spec.checkpoint_dir.with_name("checkpoint.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))
    shutil.rmtree(spec.checkpoint_dir, ignore_errors=True)
    staging.replace(spec.checkpoint_dir)

    head = model.model_head
    head_parameters = int(head.coef_.size + head.intercept_.size)
    body_parameters = sum(p.numel() for p in model.model_body.parameters())
    write_json(
        spec.artifact_dir / "metrics.json",
        {
            "model": spec.name,
            "strategy": spec.train.strategy,
            "test_accuracy": test_accuracy,
            "validation_accuracy": validation_accuracy,
            "base_body_test_accuracy": base_accuracy,
            "test_examples": len(splits["test"]),
            "train_examples": len(few),
            "examples_per_class": spec.setfit.examples_per_class,
            "contrastive_pairs": pairs,
            # Every weight of the body is tuned, then the head is fitted.
            "trainable_parameters": body_parameters + head_parameters,
            "total_parameters": body_parameters + head_parameters,
            "head_parameters": head_parameters,
            "train_seconds": round(train_seconds, 1),
        },
    )


def export_head(spec: Spec, staging: Path) -> None:
    """`head.onnx` and `head_signature.json` from the checkpoint's scikit-learn head, checked
    against it on the test split's first texts; the labels go into the body's
    `config.json` (`id2label`), where the runtime and the code generator read them."""
    import json

    import numpy as np
    import onnxruntime
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

    from .export import signature

    model = load(spec.checkpoint_dir, spec.train.max_length)
    head = model.model_head
    labels = list(model.labels or [])
    classes = list(head.classes_)
    if classes != list(range(len(labels))):
        raise SystemExit(f"{spec.checkpoint_dir}: the head's classes {classes} are not the label ids 0..{len(labels) - 1}")
    dimension = int(head.coef_.shape[1])
    onnx_head = convert_sklearn(
        head,
        initial_types=[("sentence_embedding", FloatTensorType([None, dimension]))],
        final_types=[("label", Int64TensorType([None])), ("logits", FloatTensorType([None, len(labels)]))],
        # Raw scores (the decision function) rather than probabilities; no label→score maps.
        options={id(head): {"zipmap": False, "raw_scores": True}},
        target_opset={"": spec.opset, "ai.onnx.ml": ML_OPSET},
    )
    path = staging / "head.onnx"
    path.write_bytes(onnx_head.SerializeToString())

    texts = [row["text"] for row in bbc.read_split(spec.data_dir, "test")[:64]]
    embeddings = model.model_body.encode(texts, batch_size=32, convert_to_numpy=True).astype(np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    found_labels, logits = session.run(["label", "logits"], {"sentence_embedding": embeddings})
    expected = head.decision_function(embeddings)
    difference = float(np.abs(logits - expected).max())
    if difference > HEAD_EXPORT_TOLERANCE or (found_labels != head.predict(embeddings)).any():
        raise SystemExit(f"{path}: the ONNX head differs from scikit-learn's by {difference:.2e} (bound {HEAD_EXPORT_TOLERANCE:.0e})")
    print(f"exported {path}: logits within {difference:.2e} of decision_function on {len(texts)} texts", flush=True)
    write_json(staging / "head_signature.json", signature(path))

    config_path = staging / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["id2label"] = {str(i): label for i, label in enumerate(labels)}
    config["label2id"] = {label: i for i, label in enumerate(labels)}
    write_json(config_path, config)


def pipeline_answer(logits, labels: list[str], function: str, top_k: int | None, legacy: bool):
    """One text's answer as `TextClassificationPipeline.postprocess` shapes it, from float32
    logits: softmax, sigmoid or none, then the top label alone (the legacy default) or
    the `top_k` best (every label when `None`), best first."""
    import numpy as np

    if function == "softmax":
        shifted = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
        scores = shifted / shifted.sum(axis=-1, keepdims=True)
    elif function == "sigmoid":
        scores = 1.0 / (1.0 + np.exp(-logits))
    else:
        scores = logits
    if top_k == 1 and legacy:
        return {"label": labels[int(scores.argmax())], "score": scores.max().item()}
    ranked = [{"label": labels[i], "score": score.item()} for i, score in enumerate(scores)]
    ranked.sort(key=lambda entry: entry["score"], reverse=True)
    return ranked if top_k is None else ranked[:top_k]


def pipeline_answers(logits, labels: list[str], calls: dict[str, dict], single: bool) -> dict:
    """The pipeline's answer for each recorded parameter set: for one text (`single`, its
    answer wrapped in a list as the pipeline does for a string) or for a batch."""
    answers = {}
    for key, params in calls.items():
        legacy = "top_k" not in params
        top_k = params.get("top_k", 1)
        function = params.get("function_to_apply", "softmax").lower()
        rows = [pipeline_answer(row, labels, function, top_k, legacy) for row in logits]
        answers[key] = ([rows[0]] if legacy else rows[0]) if single else rows
    return answers


def golden(spec: Spec, cases: list[dict], digest: str, calls: dict[str, dict]) -> dict:
    """SetFit's outputs for every golden case alone and for all of them as one batch, in
    the text-classification reference's shape, plus its probabilities and embeddings."""
    import numpy as np
    import sentence_transformers
    import setfit
    import sklearn
    import torch
    import transformers

    model = load(spec.checkpoint_dir, spec.train.max_length)
    labels = list(model.labels or [])
    body, head = model.model_body, model.model_head
    records = []
    with torch.inference_mode():
        for case in cases:
            ids = body.tokenize([case["text"]])["input_ids"][0].tolist()
            embedding = body.encode([case["text"]], convert_to_numpy=True)
            logits = head.decision_function(embedding).astype(np.float32)
            probabilities = model.predict_proba([case["text"]], as_numpy=True)[0]
            records.append(
                {
                    **case,
                    "input_ids": ids,
                    "embedding": embedding[0].tolist(),
                    "logits": logits[0].tolist(),
                    "probabilities": probabilities.tolist(),
                    "pipeline": pipeline_answers(logits, labels, calls, single=True),
                }
            )
        texts = [case["text"] for case in cases]
        batch_logits = head.decision_function(body.encode(texts, batch_size=32, convert_to_numpy=True)).astype(np.float32)

    test = bbc.read_split(spec.data_dir, "test")
    examples = [bbc.Example(row["text"], row["label_id"], row["source"]) for row in test]
    test_accuracy, predictions = accuracy_of(model, examples)
    print(f"golden: {len(records)} cases; SetFit test accuracy {test_accuracy:.4f}", flush=True)
    return {
        "about": "SetFit reference outputs (the head's decision function as `logits`, `predict_proba` as "
        "`probabilities`, answers in the text-classification pipeline's shapes), written by "
        "`cargo xtask golden` from the checkpoint named here.",
        "model": spec.name,
        "checkpoint_sha256": digest,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "setfit": setfit.__version__,
            "scikit_learn": sklearn.__version__,
        },
        "max_length": spec.train.max_length,
        "labels": labels,
        "problem_type": spec.problem_type,
        "pipeline_calls": calls,
        "cases": records,
        "batch": {"ids": [case["id"] for case in cases], "pipeline": pipeline_answers(batch_logits, labels, calls, single=False)},
        "test_split": {"examples": len(test), "accuracy": test_accuracy, "predictions": predictions},
    }
