"""MMCL: a skeleton backbone co-trained with co-learning helpers, FAM (RGB alignment) and FRM (text refinement)
built in, any other ``model.helpers.CoLearningHelper`` beside them.

Training returns the backbone's logits ``S_M`` and the weighted loss terms::

    L = CE(S_M, y) + λ_R·CE(S_R, y) + λ_c·L_c + Σ_h w_h·(losses of helper h)

Evaluation needs only ``objective.backbone``: the same parameters and cost as the plain backbone. A frozen
RGB encoder (online mode) is held outside the module tree, so it is neither optimised nor saved; it runs in
:meth:`prepare_inputs` on the main device before the batch is split across GPUs. A trainable one (the public
code's Inception-V3) is ``rgb_encoder`` and encodes the ``rgb`` input in ``forward``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from model.fam import FeatureAlignment
from model.frm import FeatureRefinement
from model.helpers import CoLearningHelper, StepState

#: Names a helper cannot take: the objective's own parts.
RESERVED = ("backbone", "rgb_encoder", "frozen_rgb_encoder", "weights", "sources", "input_names", "loss_order")


class MMCLObjective(nn.Module):
    """Backbone + helpers: FAM (``rgb_dim``), FRM (``text_dim``) and ``helpers`` (name: (helper, weight)).

    ``input_names`` orders the per-sample inputs after (data, label) in :meth:`forward`; ``sources`` maps each
    extra helper's declared inputs to those names (FAM reads ``rgb``, FRM ``text``). Helpers are registered
    under their names (FAM's weights are ``fam.*``, FRM's ``frm.*``); their losses come after the
    cross-entropy, FRM's first, then FAM's, then the others in order.
    """

    def __init__(self, backbone: nn.Module, num_class: int, feature_dim: int, rgb_dim: int | None = None,
                 text_dim: int | None = None, lambda_refine: float = 0.2, lambda_align: float = 0.1,
                 temperature: float = 0.4, gather_negatives: bool = False,
                 trainable_rgb_encoder: nn.Module | None = None, frozen_rgb_encoder: nn.Module | None = None,
                 helpers: Mapping[str, tuple[CoLearningHelper, float]] | None = None,
                 sources: Mapping[str, Mapping[str, str]] | None = None,
                 input_names: Sequence[str] = ("rgb", "text")) -> None:
        super().__init__()
        self.backbone = backbone
        self.fam = FeatureAlignment(rgb_dim, feature_dim, temperature, gather_negatives) if rgb_dim else None
        self.frm = FeatureRefinement(text_dim, num_class) if text_dim else None
        self.weights = {name: weight for name, weight in (("frm", lambda_refine), ("fam", lambda_align))
                        if getattr(self, name) is not None}
        self.sources = {"fam": {"rgb": "rgb"}, "frm": {"text": "text"}, **(sources or {})}
        for name, (helper, weight) in (helpers or {}).items():
            if name in RESERVED or name in ("fam", "frm") or not name.isidentifier():
                raise ValueError(f"helper name {name!r} is not an identifier or is taken")
            self.add_module(name, helper)
            self.weights[name] = weight
        self.rgb_encoder = trainable_rgb_encoder
        object.__setattr__(self, "frozen_rgb_encoder", frozen_rgb_encoder)  # not a submodule: never saved
        self.input_names = tuple(input_names)
        self.loss_order = tuple(self.weights)

    def prepare_inputs(self, extras: list[torch.Tensor]) -> list[torch.Tensor]:
        """Encode strip images with the frozen encoder (online mode); other inputs pass through."""
        if self.frozen_rgb_encoder is None:
            return extras
        extras = list(extras)
        at = self.input_names.index("rgb")
        encoder_device = next(self.frozen_rgb_encoder.parameters()).device
        extras[at] = self.frozen_rgb_encoder(extras[at].to(encoder_device)).to(extras[at].device)
        return extras

    def forward(self, data: torch.Tensor, label: torch.Tensor, *extras: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, feature = self.backbone.forward_features(data)
        inputs = dict(zip(self.input_names, extras, strict=False))
        if self.rgb_encoder is not None and "rgb" in inputs:
            inputs["rgb"] = self.rgb_encoder(inputs["rgb"])
        step = StepState(logits, feature, label)
        losses = {"loss_ce": F.cross_entropy(logits.float(), label)}
        for name in self.loss_order:
            own = {declared: inputs[source] for declared, source in self.sources[name].items()}
            for key, value in getattr(self, name).losses(step, own).items():
                if key in losses:
                    raise ValueError(f"helper {name!r} returns loss {key!r}, which another term already has")
                losses[key] = self.weights[name] * value
        return logits, losses
