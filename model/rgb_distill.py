"""Distillation from an RGB teacher: a linear classifier fitted on the frozen RGB features of the training split
gives soft targets for the skeleton scores.

Before training, a multinomial logistic regression (scikit-learn, features standardised) is fitted on the
``rgb`` store's rows of every training sample and their labels, and kept as a fixed linear map. In each step
its scores on the batch's RGB features, softened by the temperature T, are the targets of the skeleton
scores (Hinton et al., 2015)::

    L = T² · KL( softmax(teacher / T) ‖ softmax(S_M / T) )

The teacher sees what the strips show (the object in the hand), so its soft targets say which classes look
alike in RGB, sample by sample, where the one-hot label does not.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from engine.errors import InputError
from model.helpers import CoLearningHelper, HelperContext, StepState


def fit_linear_teacher(features: np.ndarray, labels: np.ndarray, num_class: int, regularisation: float = 1.0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(K, D) weights and (K,) biases of a logistic regression on standardised ``features``, folded back onto the
    raw features; every class must occur in ``labels``."""
    missing = sorted(set(range(num_class)) - set(np.unique(labels).tolist()))
    if missing:
        raise InputError(f"the RGB teacher needs every class in the training split; class {missing[0]} has no sample")
    scaler = StandardScaler().fit(features)
    classifier = LogisticRegression(C=regularisation, max_iter=2000).fit(scaler.transform(features), labels)
    weight = classifier.coef_ / scaler.scale_
    bias = classifier.intercept_ - weight @ scaler.mean_
    if num_class == 2:  # scikit-learn keeps one row for two classes: scores (0, z)
        weight, bias = np.stack([np.zeros_like(weight[0]), weight[0]]), np.array([0.0, bias[0]])
    return weight.astype(np.float32), bias.astype(np.float32)


class RGBTeacherDistillation(CoLearningHelper):
    """Soft targets of a fixed linear RGB teacher (temperature ``temperature``); its loss is ``loss_<name>``."""

    inputs = ("rgb",)

    def __init__(self, context: HelperContext, temperature: float = 4.0, regularisation: float = 1.0) -> None:
        super().__init__()
        if context.training_split is None:
            raise InputError(f"mmcl.helpers.{context.name}: the RGB teacher is fitted on cached RGB features "
                             "(mmcl.rgb_features), not on strips encoded in the loop")
        features, labels = context.training_split("rgb")
        weight, bias = fit_linear_teacher(features, labels, context.num_class, regularisation)
        self.register_buffer("teacher_weight", torch.from_numpy(weight))
        self.register_buffer("teacher_bias", torch.from_numpy(bias))
        self.temperature, self.loss_name = temperature, f"loss_{context.name}"

    def teacher(self, rgb: torch.Tensor) -> torch.Tensor:
        """The teacher's scores (N, K) of RGB features (N, D)."""
        return rgb.float() @ self.teacher_weight.t() + self.teacher_bias

    def losses(self, step: StepState, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        t = self.temperature
        student = F.log_softmax(step.logits.float() / t, dim=1)
        target = F.log_softmax(self.teacher(inputs["rgb"]) / t, dim=1)
        return {self.loss_name: t * t * F.kl_div(student, target, log_target=True, reduction="batchmean")}
