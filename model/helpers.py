"""Co-learning helpers: training-only modules that turn what a training step has into named losses.

A helper reads the step's :class:`StepState` (the backbone's scores S_M, its pooled feature F_g, the labels)
and the per-sample inputs it declares in ``inputs`` (``"rgb"``, ``"text"``, or any store the config gives
it), and returns its losses by name, unweighted; the objective (``model.mmcl``) multiplies them by the
helper's weight and adds them to the cross-entropy. Evaluation and export never build a helper. A helper may
also offer refined scores for ``--phase test`` (``refine``), as FRM does ("w/ refine").

FAM (``model.fam``) and FRM (``model.frm``) are helpers like any other; ``docs/helpers.md`` writes a new one.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class HelperContext:
    """What a helper is built for: its name in the config (name its losses ``loss_<name>``), the number of
    classes, F_g's width, and the width (and store ``meta.json``) of each per-sample input it declared;
    ``training_split(input)`` gives that input's rows and the labels of every training sample, for a helper
    that fits something before training (cached stores only)."""

    name: str
    num_class: int
    feature_dim: int
    input_dims: Mapping[str, int] = field(default_factory=dict)
    input_meta: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    training_split: Callable[[str], tuple[np.ndarray, np.ndarray]] | None = None


@dataclass(frozen=True)
class StepState:
    """What the training step has for the helpers: scores S_M (N, K), pooled feature F_g (N, D), labels (N,)."""

    logits: torch.Tensor
    feature: torch.Tensor
    label: torch.Tensor


class CoLearningHelper(nn.Module):
    """Base of the co-learning helpers.

    Subclasses set ``inputs`` (the per-sample inputs they read, by name) and implement ``losses``. They are
    built by :meth:`build` from the run's :class:`HelperContext` and the keyword arguments of their config
    entry; the default passes both to the constructor, ``cls(context, **args)``.
    """

    inputs: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def build(cls, context: HelperContext, **args: Any) -> CoLearningHelper:
        """The helper of a run with ``context``, configured by ``args``."""
        return cls(context, **args)

    def losses(self, step: StepState, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Unweighted losses by name (``loss_*``, scalars), from ``step`` and this helper's ``inputs``."""
        raise NotImplementedError

    def refine(self, logits: torch.Tensor, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """Refined scores (N, K) for a test-time variant, or None (the default: this helper offers none)."""
        return None
