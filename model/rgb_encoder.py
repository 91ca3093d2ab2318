"""RGB encoders for FAM: a frozen open_clip image tower (default) or a trainable Inception-V3 (public code).

Both take the temporal RGB strip of a sample (docs/method.md §3: ``panels`` person crops side by side) as a PIL image
through their own ``preprocess`` and return one feature vector per sample.

* ``open_clip``: built from a model name (open_clip's own, or one of the project's configs such as the demo's
  ``mmcl-demo-tiny``, see model/clip_configs.py) and a ``pretrained`` value (an open_clip tag such as
  ``openai``, which open_clip downloads on first use, or the path of a local checkpoint file; ``None`` = random
  initialisation).
  It stays in eval mode, never receives gradients and is never saved in our checkpoints; its features can be
  precomputed once (``llm_features/extract_rgb_features.py``). ``layout`` (``LAYOUTS``) says how the strip
  meets the tower's square input; the default ``panels`` encodes each panel and concatenates the features in
  time order (``panels × D`` wide), ``strip`` squashes the whole strip, ``letterbox`` shrinks it whole and
  pads it (costs: ``FrozenClipImageEncoder``, docs/rgb_strips.md).
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
from torchvision.models import inception_v3

from engine.errors import InputError
from model.clip_configs import register_project_clip_configs

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: Layouts of a strip in the open_clip tower, with the resize mode of open_clip's transform each uses (None: the
#: model's own, shorter side to S then centre crop, which for a square panel is a plain resize).
LAYOUTS: dict[str, str | None] = {"panels": None, "strip": "squash", "letterbox": "longest"}
DEFAULT_LAYOUT, DEFAULT_PANELS = "panels", 5


def split_panels(strip: Image.Image, panels: int) -> list[Image.Image]:
    """Cut a strip into ``panels`` equal-width images, left to right."""
    width, height = strip.size
    step = width / panels
    return [strip.crop((round(i * step), 0, round((i + 1) * step), height)) for i in range(panels)]


class FrozenClipImageEncoder(nn.Module):
    """The image tower of an open_clip model, frozen: eval mode, no gradients, outputs (N, output_dim).

    ``layout`` says how a strip of ``panels`` square person crops (5:1) meets the tower's S × S input; the
    figures are for 5 panels of 224 px and ViT-B/32 (S = 224, D = 512, ~4.4 GFLOPs a forward pass):

    * ``panels`` (default): each panel resized to S × S and encoded, the D-d features concatenated in time
      order. 5 passes a strip (≈ 22 GFLOPs), ``panels × D`` = 2560 wide (FAM's first Linear grows from
      512×256 to 2560×256); every person keeps a full 224 × 224 px.
    * ``strip``: the whole strip squashed to S × S. 1 pass (4.4 GFLOPs), D wide; each person is squeezed to
      ~45 × 224 px (5:1 distortion).
    * ``letterbox``: the whole strip shrunk to S wide, aspect kept, padded with black to S × S. 1 pass, D
      wide; each person ~45 × 45 px, undistorted.

    ``panels`` is the default because it is the only layout that shows the tower each person at the resolution
    it was trained on; its 5× cost is paid once per sample for cached features (online, every epoch).
    """

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | None = None, image_size: int | None = None,
                 layout: str = DEFAULT_LAYOUT, panels: int = DEFAULT_PANELS) -> None:
        super().__init__()
        import open_clip

        register_project_clip_configs()
        if layout not in LAYOUTS:
            raise InputError(f"rgb_encoder.layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}")
        if layout == "panels" and panels < 1:
            raise InputError(f"rgb_encoder.panels: expected at least 1, got {panels}")
        if pretrained and Path(pretrained).suffix and not Path(pretrained).is_file():
            raise InputError(f"rgb_encoder.pretrained: checkpoint file not found: {pretrained}")
        try:
            clip, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained or None, force_image_size=image_size,
                image_resize_mode=LAYOUTS[layout])
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
        """One strip → (panels, 3, S, S) with ``layout='panels'``, else (3, S, S)."""
        strip = strip.convert("RGB")
        if self.layout != "panels":
            return self.image_transform(strip)
        return torch.stack([self.image_transform(panel) for panel in split_panels(strip, self.panels)])

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed strips (N, ...) → (N, output_dim) float32."""
        if self.layout != "panels":
            return self.visual(images).float()
        n = images.shape[0]
        return self.visual(images.flatten(0, 1)).float().reshape(n, -1)


#: The public feeder's Inception-V3 input: shorter side to 299 (aspect kept), ImageNet normalisation.
INCEPTION_TRANSFORM = transforms.Compose([
    transforms.Resize(299), transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
#: torchvision's ImageNet Inception-V3 weights (``Inception_V3_Weights.IMAGENET1K_V1``), as it names the file.
INCEPTION_V3_FILE = "inception_v3_google-0cc3c7bd.pth"


def load_inception_weights(net: nn.Module, path: str) -> None:
    """Load torchvision's Inception-V3 weights file at ``path`` into ``net`` (built without the auxiliary
    classifier, whose output the public model never reads); a missing, unreadable or foreign file is one
    ``InputError`` naming it."""
    if not Path(path).is_file():
        raise InputError(f"rgb_encoder.weights_path: {path} not found: place torchvision's ImageNet Inception-V3 "
                         f"weights ({INCEPTION_V3_FILE}, Inception_V3_Weights.IMAGENET1K_V1; torchvision keeps a "
                         f"downloaded copy in {Path(torch.hub.get_dir()) / 'checkpoints'}) there")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises several types for corrupt or unsafe files
        reason = " ".join(str(err).split())[:200]
        raise InputError(f"{path}: not a loadable weights-only torch file ({reason})") from None
    expected = net.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")} if isinstance(state, dict) else {}
    wrong = sorted(k for k in expected if getattr(state.get(k), "shape", None) != expected[k].shape)
    if wrong or len(state) != len(expected):
        raise InputError(f"{path}: not torchvision's Inception-V3 ImageNet weights ({len(wrong)} of "
                         f"{len(expected)} tensors missing or of another shape, {len(state)} given)")
    net.load_state_dict(state)


class InceptionV3Encoder(nn.Module):
    """Trainable torchvision Inception-V3 whose 1000-d logits are the RGB feature (the public MMCL choice)."""

    output_dim = 1000

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__()
        self.net = inception_v3(weights=None, aux_logits=False, transform_input=True, init_weights=weights_path is None)
        if weights_path:
            load_inception_weights(self.net, weights_path)
        else:
            warnings.warn("Inception-V3 starts from random weights: pass rgb_encoder.weights_path "
                          "(torchvision's inception_v3 ImageNet file) for the public recipe", stacklevel=2)
        self.spec = {"type": "inception_v3", "weights_path": weights_path}

    @staticmethod
    def preprocess(strip: Image.Image) -> torch.Tensor:
        """One strip → (3, 299, 299·aspect): shorter side to 299, as the public feeder does."""
        return INCEPTION_TRANSFORM(strip.convert("RGB"))

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
