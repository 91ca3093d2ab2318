"""A frozen open_clip text tower that turns answer texts into fixed-width features (docs/method.md §4, 'embedded')."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from engine.errors import InputError
from model.clip_configs import register_project_clip_configs


class FrozenClipTextEncoder(nn.Module):
    """open_clip text encoder (``model_name`` + ``pretrained`` tag or local file; ``None`` = random init)."""

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | None = None) -> None:
        super().__init__()
        import open_clip

        register_project_clip_configs()
        try:
            clip = open_clip.create_model(model_name, pretrained=pretrained or None)
        except RuntimeError as err:
            raise InputError(f"text encoder: cannot build open_clip {model_name!r} ({err})") from None
        clip.visual = None  # only the text tower is needed
        self.clip = clip.requires_grad_(False).eval()
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.spec = {"type": "open_clip_text", "model_name": model_name, "pretrained": pretrained}
        self.output_dim = int(self([""]).shape[1])

    @torch.no_grad()
    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """(len(texts), output_dim) float32 features of the texts."""
        device = self.clip.token_embedding.weight.device
        return self.clip.encode_text(self.tokenizer(list(texts)).to(device)).float()
