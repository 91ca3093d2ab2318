"""FAM, the feature alignment module: project RGB features and align them with the skeleton feature.

The loss is the symmetric contrastive loss of docs/method.md §3 with intra- and inter-view negatives::

    l(a_i, b_i) = -log( e^{s(a_i,b_i)/τ} / (e^{s(a_i,b_i)/τ} + Σ_{k≠i} [e^{s(a_i,b_k)/τ} + e^{s(a_i,a_k)/τ}]) )
    L_c = 1/(2N) Σ_i [l(F_g^i, F_c^i) + l(F_c^i, F_g^i)]

with ``s`` the cosine similarity. Negatives come from this replica's batch, or from every rank's batch
when ``gather_negatives`` is on (the positive stays the sample's own pair). :class:`FeatureAlignment` is the
co-learning helper (``model.helpers``) reading the ``rgb`` input: an RGB feature per sample.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from model.helpers import CoLearningHelper, HelperContext, StepState
from model.precision import full_precision


def directional_loss(anchors: torch.Tensor, pairs_all: torch.Tensor, anchors_all: torch.Tensor, offset: int,
                     temperature: float) -> torch.Tensor:
    """``l(a_i, b_i)`` for each local anchor ``a_i`` (rows of ``anchors``, L2-normalised).

    ``pairs_all`` / ``anchors_all`` hold the candidates (this rank's rows start at ``offset``): the positive is
    ``pairs_all[offset + i]``, the negatives every other row of ``pairs_all`` and of ``anchors_all``.
    """
    rows = torch.arange(len(anchors), device=anchors.device)
    between = anchors @ pairs_all.t() / temperature
    self_mask = torch.zeros_like(between, dtype=torch.bool)
    self_mask[rows, rows + offset] = True
    within = (anchors @ anchors_all.t() / temperature).masked_fill(self_mask, float("-inf"))  # not its own negative
    denominator = torch.logsumexp(torch.cat([between, within], dim=1), dim=1)
    return denominator - between[rows, rows + offset]


def _gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All ranks' rows concatenated in rank order; gradients flow back to each rank's own rows."""
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)


def contrastive_alignment_loss(skeleton: torch.Tensor, rgb: torch.Tensor, temperature: float = 0.4,
                               gather_negatives: bool = False) -> torch.Tensor:
    """``L_c`` between skeleton features (N, D) and projected RGB features (N, D), in float32 under autocast."""
    with full_precision(skeleton):
        a, b = F.normalize(skeleton.float(), dim=1), F.normalize(rgb.float(), dim=1)
        if gather_negatives and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            a_all, b_all = _gather_with_grad(a), _gather_with_grad(b)
            offset = dist.get_rank() * len(a)
        else:
            a_all, b_all, offset = a, b, 0
        forward = directional_loss(a, b_all, a_all, offset, temperature)
        backward = directional_loss(b, a_all, b_all, offset, temperature)
        return 0.5 * (forward + backward).mean()


class FeatureAlignment(CoLearningHelper):
    """Projection MLP ``D → feature_dim → feature_dim`` for RGB features, and the alignment loss ``loss_align``."""

    inputs = ("rgb",)

    def __init__(self, rgb_dim: int, feature_dim: int = 256, temperature: float = 0.4,
                 gather_negatives: bool = False) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(rgb_dim, feature_dim), nn.ReLU(inplace=True),
                                 nn.Linear(feature_dim, feature_dim))
        self.temperature = temperature
        self.gather_negatives = gather_negatives

    @classmethod
    def build(cls, context: HelperContext, temperature: float = 0.4,
              gather_negatives: bool = False) -> FeatureAlignment:
        return cls(context.input_dims["rgb"], context.feature_dim, temperature, gather_negatives)

    def losses(self, step: StepState, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss_align": self(step.feature, inputs["rgb"])}

    def forward(self, skeleton_feature: torch.Tensor, rgb_feature: torch.Tensor) -> torch.Tensor:
        """The alignment loss of the pooled skeleton feature ``F_g`` (N, feature_dim) and RGB features (N, D)."""
        projected = self.mlp(rgb_feature.to(self.mlp[0].weight.dtype))
        return contrastive_alignment_loss(skeleton_feature, projected, self.temperature, self.gather_negatives)
