"""A distilled student's export, variants and reference (`--step export|optimize|golden`).

The student (`artifacts/<name>/student/checkpoint`, see `distill`) goes through the
teacher's steps, but as steps of its own that run after the teacher's: the teacher's
variants can then serve while the student trains, and the student's swap in behind their
canary once they pass their gate. Each writes beside the teacher's files and touches none
of them:

- export: `onnx/model.student.onnx`, refused unless its signature (and a sentence-embedding
  model's pooling) is the teacher's, so the same tokenizer, config, `pooling.json` and
  generated crate serve both;
- optimize: its O2 and both INT8s, made as the teacher's are (see `optimize`; O1 and O3
  are left out to keep the pipeline short), listed in `onnx/variants.student.json` (the
  schema of `variants.json`), each marked with the teacher's layers it kept;
- golden: its PyTorch reference, `student/reference.json` (see `golden`, and `embed` for a
  sentence-embedding model, `ner` for a token classifier), with the teacher's test metric
  from the teacher's reference (accuracy; recall@10; entity F1), which its gate compares
  it to.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from .export import onnx_of, signature
from .golden import checkpoint_digest, reference
from .optimize import Recipe, describe, int8_of, int8_of_fp32, made, optimized, selective_recipe
from .spec import OFFLINE_ENV, Spec, load, seed_everything, write_json

# The student's FP32 export, beside the teacher's `model.onnx`.
STUDENT_FILE = "model.student.onnx"
# The student's manifest, beside the teacher's `variants.json`.
MANIFEST = "variants.student.json"


def checkpoint(spec: Spec) -> Path:
    path = spec.student_dir / "checkpoint"
    if not (path / "config.json").is_file():
        raise SystemExit(f"no student at {path}: run `cargo xtask distill` first")
    return path


def export(spec: Spec) -> None:
    teacher_signature = spec.onnx_dir / "signature.json"
    if not teacher_signature.is_file():
        raise SystemExit(f"no {teacher_signature}: run `cargo xtask export` first")
    target = spec.onnx_dir / STUDENT_FILE
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=spec.onnx_dir.parent) as scratch:
        onnx_of(spec, checkpoint(spec), Path(scratch))
        written = Path(scratch) / "model.onnx"
        if signature(written) != json.loads(teacher_signature.read_text(encoding="utf-8")):
            raise SystemExit(f"the student's ONNX signature differs from the teacher's ({checkpoint(spec)})")
        teacher_pooling = spec.onnx_dir / "pooling.json"
        if teacher_pooling.is_file():
            from .embed import pooling_description

            if pooling_description(checkpoint(spec)) != json.loads(teacher_pooling.read_text(encoding="utf-8")):
                raise SystemExit(f"the student's pooling differs from the teacher's ({checkpoint(spec)})")
        shutil.move(written, target)
    print(f"exported {target}", flush=True)


def recipes(spec: Spec) -> tuple[list[Recipe], str]:
    """The student's variants of `model.student.onnx`: the ones the teacher's speed ranks
    high (O2, the two INT8s, an embedding model's selective INT8), and the INT8 config this
    CPU gets."""
    onnx_dir = spec.onnx_dir
    quantize_fp32, int8_config = int8_of_fp32(onnx_dir, STUDENT_FILE)
    return [
        ("student-O2", "model.student.O2.onnx", "fp32", "ORTOptimizer O2 of the student",
         optimized(onnx_dir, "O2", STUDENT_FILE)),
        ("student-int8", "model.student.int8.onnx", "int8",
         f"ORTQuantizer dynamic, per-channel, {int8_config} config, of the student's FP32 graph", quantize_fp32),
        ("student-O2-int8", "model.student.O2.int8.onnx", "int8",
         "onnxruntime quantize_dynamic, per-tensor QInt8 weights, of the student's O2 graph",
         int8_of(onnx_dir / "model.student.O2.onnx")),
        *selective_recipe(spec, "student-", STUDENT_FILE),
    ], int8_config


def optimize(spec: Spec) -> None:
    onnx_dir = spec.onnx_dir
    student = onnx_dir / STUDENT_FILE
    if not student.is_file():
        raise SystemExit(f"no {student}: run `cargo xtask distill` first")
    if spec.distill is None:
        raise SystemExit(f"models/{spec.name}.toml has no [distill] section")
    teacher_layers = json.loads((onnx_dir / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
    (onnx_dir / MANIFEST).unlink(missing_ok=True)
    student_recipes, int8_config = recipes(spec)
    variants = [{"name": "student", "kind": "fp32", "made": True, "how": "distilled, optimum export", **describe(student)}]
    variants += [made(*recipe, onnx_dir) for recipe in student_recipes]
    # What the parity gate holds a student to: its own PyTorch, and the teacher's metric.
    lineage = {"student": {"kept_layers": list(spec.distill.keep_layers), "teacher_layers": teacher_layers}}
    manifest = {"model": spec.name, "int8_config": int8_config, "variants": [{**v, **lineage} for v in variants]}
    write_json(onnx_dir / MANIFEST, manifest)


def golden(spec: Spec) -> None:
    teacher_path = spec.golden_dir / "reference.json"
    if not teacher_path.is_file():
        raise SystemExit(f"no {teacher_path}: run `cargo xtask golden` first")
    teacher = json.loads(teacher_path.read_text(encoding="utf-8"))
    if spec.task == "feature-extraction":
        from . import embed

        seed_everything(spec.train.seed)
        cases = json.loads((spec.golden_dir / "inputs.json").read_text(encoding="utf-8"))["cases"]
        student = embed.golden(spec, cases, checkpoint_digest(checkpoint(spec)), checkpoint(spec))
        kept = ("queries", "recall_at_10")
    elif spec.task == "token-classification":
        from . import ner

        seed_everything(spec.train.seed)
        cases = json.loads((spec.golden_dir / "inputs.json").read_text(encoding="utf-8"))["cases"]
        student = ner.golden(spec, cases, checkpoint_digest(checkpoint(spec)), checkpoint(spec))
        kept = ("examples", "entity_f1")
    else:
        student = reference(spec, checkpoint(spec))
        kept = ("examples", "accuracy")
    student["teacher"] = {
        "checkpoint_sha256": teacher["checkpoint_sha256"],
        "test_split": {key: teacher["test_split"][key] for key in kept},
    }
    write_json(spec.student_dir / "reference.json", student)


STEPS = {"export": export, "optimize": optimize, "golden": golden}


def main() -> None:
    parser = argparse.ArgumentParser(description="the steps of a distilled student")
    parser.add_argument("--spec", type=Path, required=True, help="resolved spec JSON written by the xtask")
    parser.add_argument("--step", choices=sorted(STEPS), required=True)
    args = parser.parse_args()
    os.environ.update(OFFLINE_ENV)
    STEPS[args.step](load(args.spec))


if __name__ == "__main__":
    main()
