"""Sentence embeddings: contrastive fine-tuning with sentence-transformers (or, for
strategy `pretrained`, the base model served as it comes), retrieval metrics, and the
golden outputs of `SentenceTransformer.encode`.

The pairs are real: each BBC article's first line is its title, the rest its body.
Training pulls a title towards its own body and away from the other bodies of the batch
(`MultipleNegativesRankingLoss`). Retrieval is measured as the Rust side measures it:
every held-out title is a query over all held-out bodies; recall@k is the share of
titles whose own body ranks in the top k by cosine similarity.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import bbc
from .fit import fit
from .spec import Spec, base_model_path, seed_everything, write_json

RECALL_AT = (1, 10)


def title_and_body(text: str) -> tuple[str, str]:
    """An article's first line and the rest; `text` is already stripped by `bbc`."""
    title, _, body = text.partition("\n")
    return title.strip(), body.strip()


def write_pairs(directory: Path, name: str, examples: list[bbc.Example]) -> None:
    """`data/<name>_pairs.jsonl`: {"title", "body"} per article, in split order."""
    import json

    tmp = directory / f"{name}_pairs.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as out:
        for example in examples:
            title, body = title_and_body(example.text)
            out.write(json.dumps({"title": title, "body": body}, ensure_ascii=False) + "\n")
    tmp.replace(directory / f"{name}_pairs.jsonl")


def retrieval(model, titles: list[str], bodies: list[str]) -> dict:
    """Recall@k of each title's own body among all bodies, and each title's top-1 body."""
    import torch

    with torch.inference_mode():
        queries = model.encode(titles, batch_size=32, normalize_embeddings=True, convert_to_tensor=True)
        corpus = model.encode(bodies, batch_size=32, normalize_embeddings=True, convert_to_tensor=True)
    scores = queries @ corpus.T
    own = scores.diagonal().unsqueeze(1)
    # Rank of the own body: bodies scoring strictly higher, so ties favour the right answer.
    ranks = (scores > own).sum(dim=1)
    recall = {f"recall_at_{k}": int((ranks < k).sum()) / len(titles) for k in RECALL_AT}
    return {**recall, "queries": len(titles), "top1": scores.argmax(dim=1).tolist()}


def load_sentence_transformer(path: Path, max_length: int):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    model.max_seq_length = max_length
    return model


def train(spec: Spec) -> None:
    from sentence_transformers import losses

    if spec.train.strategy not in ("contrastive", "pretrained"):
        raise SystemExit(f"strategy `{spec.train.strategy}` is not implemented for {spec.task}")
    started = time.monotonic()
    seed_everything(spec.train.seed)

    labels, splits = bbc.split(spec)
    bbc.write_splits(spec.data_dir, labels, splits)
    for name in ("validation", "test"):
        write_pairs(spec.data_dir, name, splits[name])
    print(f"data: {', '.join(f'{k} {len(v)}' for k, v in splits.items())} title/body pairs", flush=True)

    def pairs(name: str) -> tuple[list[str], list[str]]:
        titles, bodies = zip(*(title_and_body(e.text) for e in splits[name]), strict=True)
        return list(titles), list(bodies)

    model = load_sentence_transformer(base_model_path(spec), spec.train.max_length)
    test_titles, test_bodies = pairs("test")
    base_test = retrieval(model, test_titles, test_bodies)
    print(f"base model: test recall@1 {base_test['recall_at_1']:.4f}, @10 {base_test['recall_at_10']:.4f}", flush=True)
    if spec.train.strategy == "pretrained":
        keep_as_it_comes(spec, model, base_test, len(splits["train"]), started)
        return

    loss_function = losses.MultipleNegativesRankingLoss(model)
    train_titles, train_bodies = pairs("train")
    validation_titles, validation_bodies = pairs("validation")

    def loss_of(batch: list[int]):
        features = [
            model.tokenize([train_titles[i] for i in batch]),
            model.tokenize([train_bodies[i] for i in batch]),
        ]
        return loss_function(features, None)

    def validation(epoch: int) -> dict:
        found = retrieval(model, validation_titles, validation_bodies)
        print(f"epoch {epoch}: validation recall@1 {found['recall_at_1']:.4f}, @10 {found['recall_at_10']:.4f}", flush=True)
        return {k: found[k] for k in ("recall_at_1", "recall_at_10")}

    history = fit(model, spec, len(train_titles), loss_of, validation, started)
    train_seconds = time.monotonic() - started

    tuned_test = retrieval(model, test_titles, test_bodies)
    print(f"tuned model: test recall@1 {tuned_test['recall_at_1']:.4f}, @10 {tuned_test['recall_at_10']:.4f}", flush=True)

    save(spec, model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    write_json(
        spec.artifact_dir / "metrics.json",
        {
            "model": spec.name,
            "strategy": spec.train.strategy,
            "metric": "recall_at_10",
            "test_recall_at_1": tuned_test["recall_at_1"],
            "test_recall_at_10": tuned_test["recall_at_10"],
            "base_test_recall_at_1": base_test["recall_at_1"],
            "base_test_recall_at_10": base_test["recall_at_10"],
            "test_examples": len(test_titles),
            "train_examples": len(train_titles),
            "epochs": history,
            "trainable_parameters": trainable,
            "total_parameters": sum(p.numel() for p in model.parameters()),
            "train_seconds": round(train_seconds, 1),
        },
    )


def save(spec: Spec, model) -> None:
    """The model as the checkpoint every later step reads, replaced whole or not at all."""
    staging = spec.checkpoint_dir.with_name("checkpoint.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save(str(staging))
    shutil.rmtree(spec.checkpoint_dir, ignore_errors=True)
    staging.replace(spec.checkpoint_dir)


def keep_as_it_comes(spec: Spec, model, test: dict, unused_training: int, started: float) -> None:
    """Strategy `pretrained`: the base model is the checkpoint, unchanged, measured on the
    same test pairs a trained model would be. Its own max length is the one it is served
    with, so a spec that says otherwise is refused rather than silently truncating less or
    more than the model's authors chose."""
    import json

    config = base_model_path(spec) / "sentence_bert_config.json"
    own = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length") if config.is_file() else None
    if own is not None and own != spec.train.max_length:
        raise SystemExit(
            f"models/{spec.name}.toml, field train.max_length: {spec.train.max_length}, but the base model "
            f"is served as it comes with its own max length {own} ({config})"
        )
    save(spec, model)
    total = sum(p.numel() for p in model.parameters())
    write_json(
        spec.artifact_dir / "metrics.json",
        {
            "model": spec.name,
            "strategy": spec.train.strategy,
            "metric": "recall_at_10",
            "test_recall_at_1": test["recall_at_1"],
            "test_recall_at_10": test["recall_at_10"],
            "base_test_recall_at_1": test["recall_at_1"],
            "base_test_recall_at_10": test["recall_at_10"],
            "test_examples": test["queries"],
            # Nothing was trained on them; the split is kept so the test pairs are the same.
            "train_examples": 0,
            "unused_training_examples": unused_training,
            "epochs": [],
            "trainable_parameters": 0,
            "total_parameters": total,
            "train_seconds": round(time.monotonic() - started, 1),
        },
    )


def pooling_description(checkpoint: Path) -> dict:
    """How the checkpoint turns token vectors into one: `pooling.json` for the Rust side."""
    import json

    modules = json.loads((checkpoint / "modules.json").read_text(encoding="utf-8"))
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    pooling_path = next(checkpoint / m["path"] / "config.json" for m in modules if m["type"].endswith("Pooling"))
    pooling = json.loads(pooling_path.read_text(encoding="utf-8"))
    if "pooling_mode" in pooling:  # sentence-transformers 5
        modes = [pooling["pooling_mode"]]
        dimension = pooling["embedding_dimension"]
    else:  # the older flag-per-mode form, as base models on the hub carry it
        modes = [mode for mode in ("mean", "cls", "max") if pooling.get(f"pooling_mode_{mode}_tokens")]
        dimension = pooling["word_embedding_dimension"]
    if modes != ["mean"] and modes != ["cls"]:
        raise SystemExit(f"{pooling_path}: pooling {modes} is not supported (mean or cls)")
    if pooling.get("include_prompt", True) is not True:
        raise SystemExit(f"{pooling_path}: include_prompt=false is not supported")
    unsupported = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if unsupported:
        raise SystemExit(f"{checkpoint / 'modules.json'}: modules {unsupported} are not supported")
    return {
        "mode": modes[0],
        "normalize": "Normalize" in kinds,
        "dimension": dimension,
    }


def golden(spec: Spec, cases: list[dict], digest: str, checkpoint: Path | None = None) -> dict:
    """`SentenceTransformer.encode` of every case alone, and retrieval over the test split,
    from `checkpoint` (the fine-tuned model's unless a distilled student's is given)."""
    import sentence_transformers
    import torch
    import transformers

    checkpoint = checkpoint or spec.checkpoint_dir
    model = load_sentence_transformer(checkpoint, spec.train.max_length).eval()
    records = []
    with torch.inference_mode():
        for case in cases:
            ids = model.tokenize([case["text"]])["input_ids"][0].tolist()
            embedding = model.encode([case["text"]], convert_to_numpy=True)[0].tolist()
            records.append({**case, "input_ids": ids, "embedding": embedding})
    pairs = bbc.read_split(spec.data_dir, "test_pairs")
    test = retrieval(model, [p["title"] for p in pairs], [p["body"] for p in pairs])
    print(
        f"golden: {len(records)} cases; PyTorch test recall@1 {test['recall_at_1']:.4f}, @10 {test['recall_at_10']:.4f}",
        flush=True,
    )
    return {
        "about": "SentenceTransformer.encode outputs, written by `cargo xtask golden` from the checkpoint named here.",
        "model": spec.name,
        "checkpoint_sha256": digest,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
        "max_length": spec.train.max_length,
        "pooling": pooling_description(checkpoint),
        "cases": records,
        "test_split": test,
    }
