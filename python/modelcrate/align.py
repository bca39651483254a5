"""Image–text alignment: every step of a CLIP-style dual encoder, from the spec to the
golden outputs.

`python -m modelcrate.align --step STEP --spec FILE`, STEP one of:

- `train`: the dual encoder of `dual_encoder` (EfficientNet-Lite0 through timm, weights
  from `base.package`; all-MiniLM-L6-v2 from `text_tower.package`; a projection each),
  trained with CLIP's contrastive loss on the image–caption pairs of `captions`: the
  `animal-shape-mnist` silhouettes of a stratified sample (`image.examples_per_class`,
  split train / validation / test on disjoint silhouettes), drawn afresh with a fresh
  caption every epoch. The text tower is locked (LiT's recipe turned round: its pretrained
  sentence space is what makes unseen phrasings work; only its projection learns, see
  `TEXT_TOWER`); the image tower, both projections and the temperature learn. Writes
  `data/test/*.png` and `data/test.jsonl` (the test images as files, so that Rust decodes
  what Python decodes), `checkpoint/` (safetensors, config.json, preprocessor_config.json,
  the text tower's tokenizer) and `metrics.json` (zero-shot accuracy on the test images for
  every template of `captions.HELD_OUT_TEMPLATES`, never seen in training).
- `export`: each tower with `torch.onnx.export` (the spec's opset, dynamic batch and
  length): `model.onnx`, `pixel_values` `[batch, 3, crop, crop]` → `image_embeds`
  `[batch, dim]`, and `text_model.onnx`, `input_ids`, `attention_mask`, `token_type_ids`
  `[batch, sequence]` → `text_embeds` `[batch, dim]`, both unit vectors; each checked
  against PyTorch; `signature.json` and `text_signature.json`; the tokenizer truncating at
  `train.max_length`.
- `optimize`: each tower's ONNX Runtime graph optimizations (`O1`, `O2`) and INT8: the
  image tower's static (QDQ, calibrated on training images, its stem FP32: `FP32_STEM`),
  the text tower's dynamic (per-channel); a variant is a pair, listed in `variants.json`
  with both files.
- `golden`: for every golden image its pixels (digests, and the raw bytes under
  `golden-pixels/`), its embedding and the zero-shot pipeline's answer over the golden
  candidate labels; every golden text's embedding; the test images' embeddings' zero-shot
  predictions for every held-out template.
- `golden-inputs`: (re)writes the committed golden images and texts under `golden/<name>/`
  (run by hand; the files are checked in).

The image preprocessing is the image classifier's (torchvision's evaluation transform,
`vision.transform`); the text's is MiniLM's tokenizer. Zero-shot classification is the
Hugging Face pipeline's: each candidate label in the hypothesis template, the image's
similarity to each times the temperature, softmax over the candidates.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from . import captions, dual_encoder, quantize
from .spec import OFFLINE_ENV, Spec, load, seed_everything, write_json
from .vision import ANIMAL_LABELS, animal_shapes, pixels_before_scaling, preprocessor_config, split_indices, transform

# The text tower is locked: measured on this data (800 silhouettes per animal, 2 epochs,
# the held-out templates), training it too (at 3e-5 beside the image tower's 5e-4, cosine
# schedule) reached zero-shot test accuracy 0.828–0.834; locked, with `fit`'s schedule,
# 0.847–0.852. Its pretrained sentence space carries phrasings it never saw in a caption.
TEXT_TOWER = "locked"
VALIDATION_IMAGES = 200
CALIBRATION_IMAGES = 128
# The pipeline's default hypothesis template (`ZeroShotImageClassificationPipeline`).
PIPELINE_TEMPLATE = "This is a photo of {}."


def settings_of(spec_path: Path) -> dict:
    """The spec's `image` and `text_tower` sections, which the shared `Spec` does not read."""
    raw = json.loads(spec_path.read_text(encoding="utf-8"))
    image, text = raw.get("image"), raw.get("text_tower")
    if not isinstance(image, dict) or not isinstance(text, dict):
        raise SystemExit(f"{spec_path}: an image–text model's spec needs `image` and `text_tower` sections")
    return {**image, "text_package": text["package"], "text_model": text["model"]}


def text_base(settings: dict) -> Path:
    """The text tower's base model directory, from the package that carries it."""
    import importlib

    package = settings["text_package"]
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ModuleNotFoundError as error:
        raise SystemExit(f"text tower package `{package}` is not installed in the venv (field text_tower.package)") from error
    path = Path(module.get_model_path())
    if not (path / "config.json").is_file():
        raise SystemExit(f"text tower package `{package}` has no config.json under {path}")
    return path


def splits_of(spec: Spec, settings: dict) -> dict:
    """Each split's silhouettes and labels (disjoint silhouettes, stratified)."""
    images, labels = animal_shapes()
    return {name: (images[indices], labels[indices]) for name, indices in split_indices(spec, labels, settings["examples_per_class"]).items()}


def tokenize(tokenizer, texts: list[str], max_length: int) -> dict:
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {name: encoded[name] for name in ("input_ids", "attention_mask", "token_type_ids")}


def embed_images(model, tensors: list, batch_size: int = 64):
    import torch

    with torch.inference_mode():
        return torch.cat([model.encode_image(torch.stack(tensors[i : i + batch_size])) for i in range(0, len(tensors), batch_size)])


def embed_texts(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 64):
    import torch

    with torch.inference_mode():
        return torch.cat(
            [model.encode_text(**tokenize(tokenizer, texts[i : i + batch_size], max_length)) for i in range(0, len(texts), batch_size)]
        )


def zero_shot_accuracy(model, tokenizer, max_length: int, image_embeds, labels, template: str) -> tuple[float, list[int]]:
    """Accuracy of zero-shot classification over the ten animals with `template`, and the
    predictions."""
    label_embeds = embed_texts(model, tokenizer, captions.zero_shot_prompts(template, ANIMAL_LABELS), max_length)
    predictions = dual_encoder.zero_shot(image_embeds, label_embeds).tolist()
    return sum(int(p == int(l)) for p, l in zip(predictions, labels)) / len(predictions), predictions


def load_checkpoint(spec: Spec):
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    checkpoint = spec.checkpoint_dir
    model = dual_encoder.build(checkpoint / "text", pretrained=False)
    model.load_state_dict(load_file(str(checkpoint / "model.safetensors")), strict=True)
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    return model.eval(), AutoTokenizer.from_pretrained(str(checkpoint / "text")), config


def test_rows(spec: Spec) -> list[dict]:
    return [json.loads(line) for line in (spec.data_dir / "test.jsonl").read_text(encoding="utf-8").splitlines()]


def test_image_embeds(spec: Spec, model, settings: dict):
    from PIL import Image

    prepare = transform(settings)
    rows = test_rows(spec)
    return embed_images(model, [prepare(Image.open(spec.data_dir / r["file"])) for r in rows]), [r["label_id"] for r in rows]


def held_out_accuracy(spec: Spec, model, tokenizer, settings: dict) -> dict:
    """Zero-shot accuracy on the test images for every held-out template, and their mean."""
    image_embeds, labels = test_image_embeds(spec, model, settings)
    by_template = {}
    predictions = {}
    for template in captions.HELD_OUT_TEMPLATES:
        by_template[template], predictions[template] = zero_shot_accuracy(model, tokenizer, spec.train.max_length, image_embeds, labels, template)
    return {
        "by_template": by_template,
        "mean": sum(by_template.values()) / len(by_template),
        "predictions": predictions,
        "examples": len(labels),
    }


# ---------------------------------------------------------------- steps


def train(spec: Spec, settings: dict) -> None:
    import torch
    from PIL import Image
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from .fit import fit

    started = time.monotonic()
    seed_everything(spec.train.seed)
    if spec.train.strategy != "contrastive":
        raise SystemExit(f"models/{spec.name}.toml, field train.strategy: a dual encoder is trained `contrastive`")
    captions.check_held_out()
    splits = splits_of(spec, settings)
    print(f"silhouettes: {', '.join(f'{k} {len(v[1])}' for k, v in splits.items())}; labels {ANIMAL_LABELS}", flush=True)
    seed = spec.train.seed

    # The test images as PNG files: Rust evaluates on the same files.
    data = spec.data_dir
    shutil.rmtree(data, ignore_errors=True)
    (data / "test").mkdir(parents=True)
    rows = []
    test_silhouettes, test_labels = splits["test"]
    for index in range(len(test_labels)):
        pixels, caption, drawing = captions.pair(seed, "test", index, 0, test_silhouettes, test_labels, ANIMAL_LABELS)
        name = f"test/{index:05}.png"
        Image.fromarray(pixels, mode="RGB").save(data / name)
        rows.append({"file": name, "label_id": drawing.label, "label": ANIMAL_LABELS[drawing.label], "colour": drawing.colour, "caption": caption})
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    base = text_base(settings)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = dual_encoder.build(base, pretrained=True)
    for parameter in model.text.parameters():
        parameter.requires_grad_(False)
    prepare = transform(settings)
    max_length = spec.train.max_length
    train_silhouettes, train_labels = splits["train"]
    epoch_of = {"current": 0}

    def loss_of(indices: list[int]):
        model.text.eval()  # locked: no dropout either
        pairs = [captions.pair(seed, "train", i, epoch_of["current"], train_silhouettes, train_labels, ANIMAL_LABELS) for i in indices]
        image_embeds = model.encode_image(torch.stack([prepare(Image.fromarray(p, mode="RGB")) for p, _, _ in pairs]))
        text_embeds = model.encode_text(**tokenize(tokenizer, [c for _, c, _ in pairs], max_length))
        return dual_encoder.contrastive_loss(image_embeds, text_embeds, model.scale())

    validation_silhouettes, validation_labels = splits["validation"]
    count = min(VALIDATION_IMAGES, len(validation_labels))
    validation_tensors = [
        prepare(Image.fromarray(captions.pair(seed, "validation", i, 0, validation_silhouettes, validation_labels, ANIMAL_LABELS)[0], mode="RGB"))
        for i in range(count)
    ]

    def validation(epoch: int) -> dict:
        epoch_of["current"] = epoch  # the next epoch draws fresh pairs
        accuracy, _ = zero_shot_accuracy(
            model, tokenizer, max_length, embed_images(model, validation_tensors), validation_labels[:count], captions.HELD_OUT_TEMPLATES[0]
        )
        print(f"epoch {epoch}: validation zero-shot accuracy {accuracy:.4f}, temperature scale {float(model.scale().detach()):.2f}", flush=True)
        return {"validation_accuracy": accuracy, "logit_scale": float(model.scale().detach())}

    history = fit(model, spec, len(train_labels), loss_of, validation, started)
    train_seconds = time.monotonic() - started
    model.eval()

    staging = spec.checkpoint_dir.with_name("checkpoint.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(staging / "model.safetensors"))
    write_json(staging / "config.json", model_config(spec, settings, model))
    write_json(staging / "preprocessor_config.json", preprocessor_config(settings))
    model.text.config.save_pretrained(str(staging / "text"))
    tokenizer.save_pretrained(str(staging / "text"))
    shutil.rmtree(spec.checkpoint_dir, ignore_errors=True)
    staging.replace(spec.checkpoint_dir)

    test = held_out_accuracy(spec, model, tokenizer, settings)
    for template, accuracy in test["by_template"].items():
        print(f"test zero-shot accuracy {accuracy:.4f} with {template!r}", flush=True)
    write_json(
        spec.artifact_dir / "metrics.json",
        {
            "model": spec.name,
            "strategy": spec.train.strategy,
            "test_accuracy": test["mean"],
            "test_micro_f1": None,
            "test_zero_shot_accuracy": test["by_template"],
            "test_examples": len(rows),
            "train_examples": len(train_labels),
            "epochs": history,
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "total_parameters": sum(p.numel() for p in model.parameters()),
            "lora": None,
            "train_seconds": round(train_seconds, 1),
        },
    )


def model_config(spec: Spec, settings: dict, model) -> dict:
    return {
        "architectures": ["DualEncoder"],
        "model_type": "dual-encoder-efficientnet-lite0-minilm",
        "library_name": "timm+transformers",
        "base_model": spec.base_model,
        "text_base_model": settings["text_model"],
        "projection_dim": dual_encoder.EMBEDDING_DIM,
        # CLIP's temperature, as its config names it: logits are exp(logit_scale) × cosine.
        "logit_scale": float(model.logit_scale.clamp(max=dual_encoder.MAX_LOGIT_SCALE)),
        "image_size": settings["crop"],
        "max_length": spec.train.max_length,
        "text_tower": TEXT_TOWER,
        "num_channels": 3,
    }


def export(spec: Spec, settings: dict) -> None:
    import numpy as np
    import onnxruntime
    import torch

    from .export import fix_tokenizer, signature

    if not (spec.checkpoint_dir / "model.safetensors").is_file():
        raise SystemExit(f"no checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    model, tokenizer, _ = load_checkpoint(spec)
    staging = spec.onnx_dir.with_name("onnx.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    crop = settings["crop"]
    generator = torch.Generator().manual_seed(spec.train.seed)
    pixels = torch.randn(2, 3, crop, crop, generator=generator)
    torch.onnx.export(
        dual_encoder.tower(model, "image"),
        (pixels,),
        str(staging / "model.onnx"),
        dynamo=False,
        input_names=["pixel_values"],
        output_names=["image_embeds"],
        dynamic_axes={"pixel_values": {0: "batch_size"}, "image_embeds": {0: "batch_size"}},
        opset_version=spec.opset,
        do_constant_folding=True,
    )
    texts = tokenize(tokenizer, ["a red cat", "the silhouette of an elephant on a blue background"], spec.train.max_length)
    text_inputs = ("input_ids", "attention_mask", "token_type_ids")
    torch.onnx.export(
        dual_encoder.tower(model, "text"),
        tuple(texts[name] for name in text_inputs),
        str(staging / "text_model.onnx"),
        dynamo=False,
        input_names=list(text_inputs),
        output_names=["text_embeds"],
        dynamic_axes={**{name: {0: "batch_size", 1: "sequence_length"} for name in text_inputs}, "text_embeds": {0: "batch_size"}},
        opset_version=spec.opset,
        do_constant_folding=True,
    )
    fix_embedding_dims(staging / "model.onnx", "image_embeds")
    fix_embedding_dims(staging / "text_model.onnx", "text_embeds")
    # Validate as optimum does: each export against PyTorch on inputs it did not trace.
    check_pixels = torch.randn(5, 3, crop, crop, generator=generator)
    check_texts = tokenize(tokenizer, ["This is a photo of giraffe.", "a zebra", "an image that shows a small brown horse in a field"], spec.train.max_length)
    with torch.inference_mode():
        expected_images = model.encode_image(check_pixels).numpy()
        expected_texts = model.encode_text(**check_texts).numpy()
    options = onnxruntime.SessionOptions()
    image_session = onnxruntime.InferenceSession(str(staging / "model.onnx"), options, providers=["CPUExecutionProvider"])
    text_session = onnxruntime.InferenceSession(str(staging / "text_model.onnx"), options, providers=["CPUExecutionProvider"])
    (got_images,) = image_session.run(["image_embeds"], {"pixel_values": check_pixels.numpy()})
    (got_texts,) = text_session.run(["text_embeds"], {k: v.numpy() for k, v in check_texts.items()})
    difference = max(float(np.abs(got_images - expected_images).max()), float(np.abs(got_texts - expected_texts).max()))
    if difference > 1e-4:
        raise SystemExit(f"the ONNX export differs from PyTorch by {difference:.2e} (bound 1e-4)")
    print(f"export validated: max |embedding diff| {difference:.2e} on 5 random images and 3 texts", flush=True)
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(spec.checkpoint_dir / name, staging / name)
    tokenizer.save_pretrained(str(staging))
    fix_tokenizer(staging / "tokenizer.json", spec.train.max_length)
    write_json(staging / "signature.json", signature(staging / "model.onnx"))
    write_json(staging / "text_signature.json", signature(staging / "text_model.onnx"))
    shutil.rmtree(spec.onnx_dir, ignore_errors=True)
    staging.replace(spec.onnx_dir)
    print(f"exported {spec.onnx_dir / 'model.onnx'} and {spec.onnx_dir / 'text_model.onnx'}", flush=True)


def fix_embedding_dims(path: Path, output: str) -> None:
    """The tracer names an embedding's width as if it varied (it comes out of the
    normalisation's division); it is the projection's, so the signature says so."""
    import onnx

    model = onnx.load(str(path))
    (value,) = [o for o in model.graph.output if o.name == output]
    width = value.type.tensor_type.shape.dim[1]
    width.Clear()
    width.dim_value = dual_encoder.EMBEDDING_DIM
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def ort_pair(image: Path, text: Path, level: str):
    """Both towers through ONNX Runtime's offline optimization at `level`."""
    from .vision import ort_optimized

    return pair_of(ort_optimized(image, level), ort_optimized(text, level))


def pair_of(make_image, make_text):
    """A variant's maker for both towers: `make_image` writes the target, `make_text` the
    same name prefixed `text_`; the text tower's facts go into the manifest entry."""
    from .optimize import describe

    def make(target: Path) -> dict:
        text_target = target.with_name(f"text_{target.name}")
        try:
            make_image(target)
            make_text(text_target)
        except Exception:
            text_target.unlink(missing_ok=True)
            raise
        return {"text": describe(text_target)}

    return make


# The image tower's stem stays FP32 in its static INT8 (as the detector's): its first
# convolution reads the normalised pixels themselves. Measured on the test images with the
# held-out templates (text tower FP32): every convolution quantized, zero-shot accuracy
# 0.8384 (PyTorch 0.8489: −1.05 points), mean cosine to FP32 0.939; the stem (the first
# convolution and block, 6 nodes) FP32, 0.8481 (−0.08), mean cosine 0.982; the next block
# FP32 too, 0.8459, mean cosine 0.994.
FP32_STEM = ("/image/conv_stem/", "/image/blocks/blocks.0/")


def static_image_int8(spec: Spec, settings: dict, source: Path):
    """The image tower's static INT8 (QDQ), calibrated on the first training pairs' images,
    its stem FP32 (`FP32_STEM`)."""

    def make(target: Path) -> None:
        import onnx
        from PIL import Image

        silhouettes, labels = splits_of(spec, settings)["train"]
        prepare = transform(settings)
        feeds = (
            {"pixel_values": prepare(Image.fromarray(captions.pair(spec.train.seed, "train", i, 0, silhouettes, labels, ANIMAL_LABELS)[0], mode="RGB")).unsqueeze(0).numpy()}
            for i in range(CALIBRATION_IMAGES)
        )
        stem = [node.name for node in onnx.load(str(source)).graph.node if node.name.startswith(FP32_STEM)]
        quantize.static(source, target, feeds, exclude=stem, pre_process=True)

    return make


def optimize(spec: Spec, settings: dict) -> None:
    """Each variant is a pair of encoders: `O1` and `O2` of both, and `int8`, the image
    tower's static INT8 with the text tower's dynamic INT8 (a transformer's usual one).
    Writes `variants.json`."""
    from .optimize import describe, made

    onnx_dir = spec.onnx_dir
    image, text = onnx_dir / "model.onnx", onnx_dir / "text_model.onnx"
    for path in (image, text):
        if not path.is_file():
            raise SystemExit(f"no {path}: run `cargo xtask export` first")
    int8_how = (
        f"image tower: {quantize.STATIC_HOW} on {CALIBRATION_IMAGES} training images, the stem FP32; "
        "text tower: onnxruntime quantize_dynamic, per-channel QInt8 weights"
    )
    recipes = [
        ("O1", "model.O1.onnx", "fp32", "ONNX Runtime offline optimization, basic, of both towers", ort_pair(image, text, "O1")),
        ("O2", "model.O2.onnx", "fp32", "ONNX Runtime offline optimization, extended, of both towers", ort_pair(image, text, "O2")),
        (
            "int8",
            "model.int8.onnx",
            "int8",
            int8_how,
            pair_of(static_image_int8(spec, settings, image), lambda target: quantize.dynamic(text, target, per_channel=True)),
        ),
    ]
    variants = [{"name": "fp32", "kind": "fp32", "made": True, "how": "torch.onnx.export, each tower", **describe(image), "text": describe(text)}]
    variants += [made(*recipe, onnx_dir) for recipe in recipes]
    write_json(onnx_dir / "variants.json", {"model": spec.name, "int8_config": "static QDQ (image), dynamic (text)", "variants": variants})


def zero_shot_answer(image_embed, label_embeds, scale: float, labels: list[str]) -> list[dict]:
    """The zero-shot pipeline's answer: softmax over the candidates of the scaled
    similarities, best first."""
    import torch

    scores = torch.softmax(scale * label_embeds @ image_embed, dim=0).tolist()
    order = sorted(range(len(labels)), key=lambda i: -scores[i])
    return [{"score": scores[i], "label": labels[i]} for i in order]


def golden(spec: Spec, settings: dict) -> None:
    import torch
    import torchvision
    import transformers
    from PIL import Image

    from .golden import checkpoint_digest

    seed_everything(spec.train.seed)
    if not (spec.checkpoint_dir / "model.safetensors").is_file():
        raise SystemExit(f"no checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    model, tokenizer, config = load_checkpoint(spec)
    scale = float(torch.tensor(config["logit_scale"]).exp())
    max_length = spec.train.max_length
    prepare = transform(settings)
    inputs = json.loads((spec.golden_dir / "inputs.json").read_text(encoding="utf-8"))
    candidates = inputs["candidate_labels"]
    label_embeds = embed_texts(model, tokenizer, captions.zero_shot_prompts(PIPELINE_TEMPLATE, candidates), max_length)
    pixels = spec.artifact_dir / "golden-pixels"
    shutil.rmtree(pixels, ignore_errors=True)
    pixels.mkdir(parents=True)

    records = []
    for case in inputs["cases"]:
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
        image_embed = embed_images(model, [prepare(image)])[0]
        records.append(
            {
                **case,
                "mode": mode,
                "width": size[0],
                "height": size[1],
                "decoded_sha256": hashlib.sha256(rgb.tobytes()).hexdigest(),
                "cropped_sha256": hashlib.sha256(cropped.tobytes()).hexdigest(),
                "image_embeds": image_embed.tolist(),
                "pipeline": zero_shot_answer(image_embed, label_embeds, scale, candidates),
            }
        )
    texts = inputs["texts"]
    text_embeds = embed_texts(model, tokenizer, [t["text"] for t in texts], max_length)
    test = held_out_accuracy(spec, model, tokenizer, settings)
    print(
        f"golden: {len(records)} images ({sum('error' in r for r in records)} undecodable), {len(texts)} texts; "
        f"PyTorch zero-shot test accuracy {test['mean']:.4f} (mean of {len(test['by_template'])} held-out templates)",
        flush=True,
    )
    write_json(
        spec.golden_dir / "reference.json",
        {
            "about": "PyTorch reference outputs, written by `cargo xtask golden` from the checkpoint named here.",
            "model": spec.name,
            "checkpoint_sha256": checkpoint_digest(spec.checkpoint_dir),
            "versions": {
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "transformers": transformers.__version__,
                "pillow": Image.__version__,
            },
            "preprocessing": preprocessor_config(settings),
            "logit_scale": config["logit_scale"],
            "hypothesis_template": PIPELINE_TEMPLATE,
            "candidate_labels": candidates,
            "cases": records,
            "texts": [{**t, "text_embeds": e} for t, e in zip(texts, text_embeds.tolist())],
            "test_split": {
                "examples": test["examples"],
                "labels": ANIMAL_LABELS,
                "templates": list(test["by_template"]),
                "accuracy": test["by_template"],
                "predictions": test["predictions"],
            },
        },
    )


# ---------------------------------------------------------------- golden inputs


def golden_inputs(spec: Spec, settings: dict) -> None:
    """Writes the golden images (drawings of test silhouettes at several sizes and modes,
    the raw 28×28 silhouettes, scikit-learn's two photographs, broken files) and texts
    (captions, the pipeline's hypotheses, long, accented and empty ones)."""
    import io

    import sklearn.datasets
    from PIL import Image

    silhouettes, labels = splits_of(spec, settings)["test"]
    first: dict[int, int] = {}
    for index, label in enumerate(labels.tolist()):
        first.setdefault(int(label), index)
    folder = spec.golden_dir / "images"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cases = []

    def add(name: str, image, note: str, **save) -> None:
        image.save(folder / name, **save)
        cases.append({"id": name.rsplit(".", 1)[0], "file": f"images/{name}", "note": note})

    drawings = {}
    for label, index in sorted(first.items()):
        pixels, caption, _ = captions.pair(spec.train.seed, "golden", index, 0, silhouettes, labels, ANIMAL_LABELS)
        drawings[label] = Image.fromarray(pixels, mode="RGB")
        add(f"{ANIMAL_LABELS[label]}.png", drawings[label], f"a drawing of a test silhouette, {captions.SIDE}×{captions.SIDE}: {caption}")
    cat, dog, horse, zebra = (drawings[ANIMAL_LABELS.index(n)] for n in ("cat", "dog", "horse", "zebra"))
    add("zebra-28.png", Image.fromarray(silhouettes[first[ANIMAL_LABELS.index("zebra")]], mode="L"), "a raw silhouette: 28×28 grayscale, white on black")
    add("horse-300x200.png", horse.resize((300, 200), Image.BILINEAR), "wider than high: the centre crop cuts the sides")
    add("giraffe-97x413.png", drawings[ANIMAL_LABELS.index("giraffe")].resize((97, 413), Image.BICUBIC), "very tall, odd sizes")
    rgba = cat.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(cat.size))
    add("cat-rgba.png", rgba, "RGBA with a gradient alpha (PIL drops alpha when converting to RGB)")
    add("dog-palette.png", dog.quantize(16), "palette (P), 16 colours")
    add("bear-1x1.png", drawings[0].resize((1, 1), Image.BILINEAR), "tiny: one pixel")
    add("elephant-1600x1200.png", drawings[ANIMAL_LABELS.index("elephant")].resize((1600, 1200), Image.BILINEAR), "large: 1600×1200")
    add("sheep-q90.jpg", drawings[ANIMAL_LABELS.index("sheep")].resize((256, 256), Image.BILINEAR), "JPEG, 4:2:0, quality 90", quality=90)
    add("zebra-gray-q75.jpg", zebra.convert("L").resize((120, 100)), "JPEG, grayscale, quality 75", quality=75)
    photos = Path(sklearn.datasets.__file__).parent / "images"
    for name in ("china.jpg", "flower.jpg"):
        shutil.copy(photos / name, folder / name)
        cases.append({"id": name[:-4], "file": f"images/{name}", "note": "a real photograph (scikit-learn's sample image, 640×427 JPEG): no animal"})
    png = io.BytesIO()
    cat.save(png, format="PNG")
    (folder / "corrupt-truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    cases.append({"id": "corrupt-truncated", "file": "images/corrupt-truncated.png", "note": "a PNG cut in half: must be refused, not guessed"})
    texts = [
        {"id": "caption", "text": "a red cat on a white background", "note": "a training-style caption"},
        {"id": "hypothesis", "text": PIPELINE_TEMPLATE.format("giraffe"), "note": "the pipeline's hypothesis for one label"},
        {"id": "label", "text": "zebra", "note": "a bare label"},
        {"id": "unseen", "text": "a shadow puppet shaped like an elephant", "note": "words never in a caption"},
        {"id": "accents", "text": "Ein Pferd auf grüner Wiese — café crème", "note": "accents and a dash (MiniLM lower-cases and strips accents)"},
        {"id": "long", "text": " ".join(["a small brown dog next to a large black horse"] * 8), "note": "longer than max_length: truncated"},
        {"id": "empty", "text": "", "note": "empty: [CLS] [SEP] only"},
    ]
    write_json(
        spec.golden_dir / "inputs.json",
        {
            "about": "Golden images and texts, written by `python -m modelcrate.align --step golden-inputs` and checked in.",
            "candidate_labels": ANIMAL_LABELS,
            "cases": cases,
            "texts": texts,
        },
    )
    print(f"wrote {len(cases)} golden images and {len(texts)} texts to {spec.golden_dir}", flush=True)


STEPS = {"train": train, "export": export, "optimize": optimize, "golden": golden, "golden-inputs": golden_inputs}


def main() -> None:
    parser = argparse.ArgumentParser(description="the steps of an image–text model")
    parser.add_argument("--spec", type=Path, required=True, help="resolved spec JSON written by the xtask")
    parser.add_argument("--step", choices=sorted(STEPS), required=True)
    args = parser.parse_args()
    os.environ.update(OFFLINE_ENV)
    STEPS[args.step](load(args.spec), settings_of(args.spec))


if __name__ == "__main__":
    main()
