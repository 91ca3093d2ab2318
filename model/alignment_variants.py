"""Two variants of FAM's alignment (``model.fam``), as co-learning helpers reading the ``rgb`` input.

* :class:`ProjectedAlignment` adds a projection head on the skeleton side, as SimCLR and CLIP do, so the loss
  acts on a projection of F_g and F_g itself is not forced onto the RGB space.
* :class:`ClassAwareAlignment` counts every same-class sample as a positive (a supervised contrastive loss
  across the two views). FAM's instance loss treats a same-class sample as a negative, which pushes apart
  the skeletons of two people drinking; here RGB features of a class (say, a hand around a cup) pull together
  the skeletons of that class, and the classes that differ only in what RGB shows are pushed apart::

      l_i = -1/|P(i)| Σ_{p ∈ P(i)} log( e^{s(a_i, p)/τ} / Σ_{c ∈ C(i)} e^{s(a_i, c)/τ} )

  with candidates C(i) = every b_k and every a_k (k ≠ i), positives P(i) those of C(i) with the label of i,
  ``s`` the cosine similarity; averaged over both directions as FAM is. With one sample per class it is
  FAM's loss.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from model.fam import FeatureAlignment
from model.helpers import HelperContext, StepState
from model.precision import full_precision


class ProjectedAlignment(FeatureAlignment):
    """FAM with an MLP ``feature_dim → feature_dim → feature_dim`` on F_g too; its loss is ``loss_<name>``."""

    def __init__(self, rgb_dim: int, feature_dim: int, temperature: float = 0.4, name: str = "fam_projected") -> None:
        super().__init__(rgb_dim, feature_dim, temperature)
        self.skeleton_head = nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.ReLU(inplace=True),
                                           nn.Linear(feature_dim, feature_dim))
        self.loss_name = f"loss_{name}"

    @classmethod
    def build(cls, context: HelperContext, temperature: float = 0.4) -> ProjectedAlignment:
        return cls(context.input_dims["rgb"], context.feature_dim, temperature, context.name)

    def losses(self, step: StepState, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        skeleton = self.skeleton_head(step.feature.to(self.mlp[0].weight.dtype))
        return {self.loss_name: self(skeleton, inputs["rgb"])}


def class_aware_loss(skeleton: torch.Tensor, rgb: torch.Tensor, labels: torch.Tensor,
                     temperature: float = 0.4) -> torch.Tensor:
    """The class-aware contrastive loss between skeleton (N, D) and projected RGB (N, D) features, in float32."""
    with full_precision(skeleton):
        a, b = F.normalize(skeleton.float(), dim=1), F.normalize(rgb.float(), dim=1)
        same = labels[:, None] == labels[None, :]
        itself = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        positives = torch.cat([same, same & ~itself], dim=1)  # over [other view, same view]

        def direction(anchors: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
            scores = torch.cat([anchors @ others.t(), (anchors @ anchors.t()).masked_fill(itself, float("-inf"))],
                               dim=1) / temperature
            log_p = scores - torch.logsumexp(scores, dim=1, keepdim=True)
            return -(log_p.masked_fill(~positives, 0).sum(dim=1) / positives.sum(dim=1))

        return 0.5 * (direction(a, b) + direction(b, a)).mean()


class ClassAwareAlignment(FeatureAlignment):
    """FAM's projection of RGB features with same-class samples as positives; its loss is ``loss_<name>``."""

    def __init__(self, rgb_dim: int, feature_dim: int, temperature: float = 0.4, name: str = "fam_classes") -> None:
        super().__init__(rgb_dim, feature_dim, temperature)
        self.loss_name = f"loss_{name}"

    @classmethod
    def build(cls, context: HelperContext, temperature: float = 0.4) -> ClassAwareAlignment:
        return cls(context.input_dims["rgb"], context.feature_dim, temperature, context.name)

    def losses(self, step: StepState, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        projected = self.mlp(inputs["rgb"].to(self.mlp[0].weight.dtype))
        return {self.loss_name: class_aware_loss(step.feature, projected, step.label, self.temperature)}
