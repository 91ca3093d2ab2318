"""FRM, the feature refinement module: text features rescale the class scores like soft labels (docs/method.md §4).

``w = softmax(Φ(F_text))`` splits each sample between a positive and a negative class-wise scale::

    S_R[b, c] = S_M[b, c] · (w_pos[b]·Pos[c] + w_neg[b]·Neg[c])

computed as ``S_M · (Neg + w_pos·(Pos − Neg))``, the same value since ``w_pos + w_neg = 1``, which makes
``S_R == S_M`` exactly at initialisation (``Pos = Neg = 1``). :class:`FeatureRefinement` is the co-learning
helper (``model.helpers``) reading the ``text`` input; its loss ``loss_refine`` is ``CE(S_R, y)``, and it offers
``S_R`` as refined test scores.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from model.helpers import CoLearningHelper, HelperContext, StepState


class FeatureRefinement(CoLearningHelper):
    """Φ (``text_dim → hidden → 2``) and the class-wise scales ``pos`` / ``neg`` (initialised to 1)."""

    inputs = ("text",)

    def __init__(self, text_dim: int, num_class: int, hidden: int = 64) -> None:
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(text_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2))
        self.pos = nn.Parameter(torch.ones(num_class))
        self.neg = nn.Parameter(torch.ones(num_class))

    @classmethod
    def build(cls, context: HelperContext, hidden: int = 64) -> FeatureRefinement:
        return cls(context.input_dims["text"], context.num_class, hidden)

    def losses(self, step: StepState, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss_refine": F.cross_entropy(self(step.logits, inputs["text"]), step.label)}

    def refine(self, logits: torch.Tensor, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self(logits, inputs["text"])

    def weights(self, text_feature: torch.Tensor) -> torch.Tensor:
        """``w`` (N, 2): the softmax of Φ over (positive, negative)."""
        return torch.softmax(self.phi(text_feature.to(self.phi[0].weight.dtype)).float(), dim=1)

    def forward(self, logits: torch.Tensor, text_feature: torch.Tensor) -> torch.Tensor:
        """Refined scores ``S_R`` (N, K) from the scores ``S_M`` (N, K) and text features (N, d)."""
        w_pos = self.weights(text_feature)[:, :1]
        return logits.float() * (self.neg + w_pos * (self.pos - self.neg))
