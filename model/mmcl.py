"""MMCL: a skeleton backbone co-trained with FAM (RGB alignment) and FRM (text refinement).

Training returns the backbone's logits ``S_M`` and the weighted loss terms::

    L = CE(S_M, y) + λ_R·CE(S_R, y) + λ_c·L_c

Evaluation needs only ``objective.backbone``: the same parameters and cost as the plain backbone. A frozen
RGB encoder (online mode) is held outside the module tree, so it is neither optimised nor saved; it runs in
:meth:`prepare_inputs` on the main device before the batch is split across GPUs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.fam import FeatureAlignment
from model.frm import FeatureRefinement


class MMCLObjective(nn.Module):
    """Backbone + optional FAM (``rgb_dim``) + optional FRM (``text_dim``) and the MMCL loss."""

    def __init__(self, backbone: nn.Module, num_class: int, feature_dim: int, rgb_dim: int | None = None,
                 text_dim: int | None = None, lambda_refine: float = 0.2, lambda_align: float = 0.1,
                 temperature: float = 0.4, gather_negatives: bool = False,
                 trainable_rgb_encoder: nn.Module | None = None, frozen_rgb_encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.fam = FeatureAlignment(rgb_dim, feature_dim, temperature, gather_negatives) if rgb_dim else None
        self.frm = FeatureRefinement(text_dim, num_class) if text_dim else None
        self.rgb_encoder = trainable_rgb_encoder
        object.__setattr__(self, "frozen_rgb_encoder", frozen_rgb_encoder)  # not a submodule: never saved
        self.lambda_refine, self.lambda_align = lambda_refine, lambda_align

    def prepare_inputs(self, extras: list[torch.Tensor]) -> list[torch.Tensor]:
        """Encode strip images with the frozen encoder (online mode); other inputs pass through."""
        if self.frozen_rgb_encoder is None:
            return extras
        rgb, *rest = extras
        encoder_device = next(self.frozen_rgb_encoder.parameters()).device
        return [self.frozen_rgb_encoder(rgb.to(encoder_device)).to(rgb.device), *rest]

    def forward(self, data: torch.Tensor, label: torch.Tensor, rgb: torch.Tensor | None = None,
                text: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, feature = self.backbone.forward_features(data)
        losses = {"loss_ce": F.cross_entropy(logits.float(), label)}
        if self.frm is not None:
            refined = self.frm(logits, text)
            losses["loss_refine"] = self.lambda_refine * F.cross_entropy(refined, label)
        if self.fam is not None:
            rgb_feature = self.rgb_encoder(rgb) if self.rgb_encoder is not None else rgb
            losses["loss_align"] = self.lambda_align * self.fam(feature, rgb_feature)
        return logits, losses
