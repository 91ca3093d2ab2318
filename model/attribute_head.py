"""The positive control of the co-learning testbed: F_g must predict a privileged per-sample attribute.

A linear head on the pooled skeleton feature F_g is trained with cross-entropy to predict an attribute of
each training sample (an ``attribute`` store of class ids, ``feeders.feature_store``), e.g. the object really
in the hand: the strongest privileged signal a helper can give. If even this does not move the skeleton-only
model, no helper that reads RGB or text will; it measures what the recipe *can* transfer.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import InputError
from model.helpers import CoLearningHelper, HelperContext, StepState


class AttributeHead(CoLearningHelper):
    """``Linear(F_g) → attribute classes``, trained with cross-entropy; its loss is ``loss_<name>``."""

    inputs = ("attribute",)

    def __init__(self, context: HelperContext) -> None:
        super().__init__()
        classes = context.input_meta.get("attribute", {}).get("classes")
        if not isinstance(classes, list) or len(classes) < 2:
            raise InputError(f"mmcl.helpers.{context.name}: its attribute store names no classes (meta.json "
                             "'classes': at least two); make it with tools.make_attribute_store")
        self.head = nn.Linear(context.feature_dim, len(classes))
        self.loss_name = f"loss_{context.name}"

    def losses(self, step: StepState, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        target = inputs["attribute"][:, 0].long()
        return {self.loss_name: F.cross_entropy(self.head(step.feature.float()), target)}
