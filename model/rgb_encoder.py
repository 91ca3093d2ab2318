"""RGB encoders for FAM: a frozen open_clip image tower (default) or a trainable Inception-V3 (public code).

Both take the temporal RGB strip of a sample (docs/method.md §3: ``panels`` person crops side by side) as a PIL image
through their own ``preprocess`` and return one feature vector per sample.

* ``open_clip``: built from a model name (open_clip's own, or one of the project's configs such as the demo's
  ``mmcl-demo-tiny``, see model/clip_configs.py) and a ``pretrained`` value (an open_clip tag such as
  ``openai``, which open_clip downloads on first use, or the path of a local checkpoint file; ``None`` = random
  initialisation).
  It stays in eval mode, never receives gradients and is never saved in our checkpoints; its features can be
  precomputed once (``llm_features/extract_rgb_features.py``). ``layout='strip'`` squashes the whole strip
  into the encoder's square input; ``layout='panels'`` encodes each panel and concatenates the features in
  time order (``panels × D`` wide).
* ``inception_v3``: torchvision's Inception-V3, trained with everything else; its 1000-d logits are the feature,
  as in the public MMCL code. ImageNet weights come from a local file when given. As torchvision's
  ImageNet-pretrained model (which the public code builds with ``pretrained=True``), it first maps the
  ImageNet-normalised input to the [-1, 1] scaling its weights were trained with (``transform_input``).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from torchvision import transforms

from engine.errors import InputError
from model.clip_configs import register_project_clip_configs

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def split_panels(strip: Image.Image, panels: int) -> list[Image.Image]:
    """Cut a strip into ``panels`` equal-width images, left to right."""
    width, height = strip.size
    step = width / panels
    return [strip.crop((round(i * step), 0, round((i + 1) * step), height)) for i in range(panels)]


class FrozenClipImageEncoder(nn.Module):
    """The image tower of an open_clip model, frozen: eval mode, no gradients, outputs (N, output_dim)."""

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | None = None, image_size: int | None = None,
                 layout: str = "strip", panels: int = 5) -> None:
        super().__init__()
        import open_clip

        register_project_clip_configs()
        if layout not in ("strip", "panels"):
            raise InputError(f"rgb_encoder.layout: expected 'strip' or 'panels', got {layout!r}")
        if pretrained and Path(pretrained).suffix and not Path(pretrained).is_file():
            raise InputError(f"rgb_encoder.pretrained: checkpoint file not found: {pretrained}")
        try:
            clip, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained or None, force_image_size=image_size,
                image_resize_mode="squash" if layout == "strip" else None)
        except RuntimeError as err:
            raise InputError(f"rgb_encoder: cannot build open_clip {model_name!r} ({err})") from None
        self.visual = clip.visual
        del clip
        self.visual.requires_grad_(False)
        self.visual.eval()
        self.image_transform = preprocess
        self.layout, self.panels = layout, panels
        width = self.visual.output_dim
        self.output_dim = width * panels if layout == "panels" else width
        self.spec = {"type": "open_clip", "model_name": model_name, "pretrained": pretrained,
                     "image_size": image_size, "layout": layout, "panels": panels}

    def train(self, mode: bool = True) -> FrozenClipImageEncoder:
        """Frozen: stays in eval mode whatever the caller asks."""
        return super().train(False)

    def preprocess(self, strip: Image.Image) -> torch.Tensor:
        """One strip → (3, S, S), or (panels, 3, S, S) with ``layout='panels'``."""
        strip = strip.convert("RGB")
        if self.layout == "strip":
            return self.image_transform(strip)
        return torch.stack([self.image_transform(panel) for panel in split_panels(strip, self.panels)])

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.layout == "strip":
            return self.visual(images).float()
        n = images.shape[0]
        return self.visual(images.flatten(0, 1)).float().reshape(n, -1)


class InceptionV3Encoder(nn.Module):
    """Trainable torchvision Inception-V3 whose 1000-d logits are the RGB feature (the public MMCL choice)."""

    output_dim = 1000

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        self.net = inception_v3(weights=None, aux_logits=False, transform_input=True, init_weights=True)
        if weights_path:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
            missing, unexpected = self.net.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise InputError(f"{weights_path}: not Inception-V3 ImageNet weights "
                                 f"(missing {missing[:1]}, unexpected {unexpected[:1]})")
        else:
            warnings.warn("Inception-V3 starts from random weights: pass rgb_encoder.weights_path "
                          "(torchvision's inception_v3 ImageNet file) for the public recipe", stacklevel=2)
        self.image_transform = transforms.Compose([
            transforms.Resize(299), transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
        self.spec = {"type": "inception_v3", "weights_path": weights_path}

    def preprocess(self, strip: Image.Image) -> torch.Tensor:
        """One strip → (3, 299, 299·aspect): shorter side to 299, as the public feeder does."""
        return self.image_transform(strip.convert("RGB"))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def build_rgb_encoder(spec: dict[str, Any]) -> FrozenClipImageEncoder | InceptionV3Encoder:
    """The encoder described by a config's ``rgb_encoder`` mapping (``type`` plus its arguments)."""
    spec = dict(spec)
    kind = spec.pop("type", "open_clip")
    builders = {"open_clip": FrozenClipImageEncoder, "inception_v3": InceptionV3Encoder}
    if kind not in builders:
        raise InputError(f"rgb_encoder.type: expected one of {sorted(builders)}, got {kind!r}")
    try:
        return builders[kind](**spec)
    except TypeError as err:
        raise InputError(f"rgb_encoder: {err}") from None
