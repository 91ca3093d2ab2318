"""The key map from the authors' MMCL checkpoints (liujf69/MMCL-Action) to ours.

Their model keeps the CTR-GCN keys at the top level and adds ``mlp.*`` (FRM's Φ, fed 3 generated token
ids), ``PosMatrix`` / ``NegMatrix`` (FRM's class-wise scales), ``FAM_Aligh.mlp.*`` (FAM's projection) and
``inception_v3.*`` (the trainable RGB encoder). Ours nests them as ``backbone.*``, ``frm.phi.*``,
``frm.pos`` / ``frm.neg``, ``fam.mlp.*`` and ``rgb_encoder.net.*``. Trained on a ``token-ids`` text store
(``llm_features.answer_questions --features token-ids``, 3 ids), our Φ has their shape and their FRM maps as is.
"""
from __future__ import annotations

import torch

_PREFIXES = (("FAM_Aligh.mlp.", "fam.mlp."), ("mlp.", "frm.phi."), ("inception_v3.", "rgb_encoder.net."))
_NAMES = {"PosMatrix": "frm.pos", "NegMatrix": "frm.neg"}
_TRAINING_ONLY = ("FAM_Aligh.", "mlp.", "inception_v3.", "PosMatrix", "NegMatrix")


def is_public_mmcl(state: dict[str, torch.Tensor]) -> bool:
    """True for a state dict laid out as the authors' MMCL model."""
    return "PosMatrix" in state or any(key.startswith("FAM_Aligh.") for key in state)


def public_key_to_ours(key: str) -> str:
    """Our name for one of their keys (backbone keys gain the ``backbone.`` prefix)."""
    if key in _NAMES:
        return _NAMES[key]
    for theirs, ours in _PREFIXES:
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return "backbone." + key


def backbone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Only the skeleton backbone's weights of a public MMCL state dict, under the backbone's own names."""
    return {key: value for key, value in state.items() if not key.startswith(_TRAINING_ONLY)}


def map_public_state(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
                     ) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """Their state dict renamed to ours, restricted to keys ``target`` has with the same shape.

    The report lists ``mapped`` keys (ours), ``ignored`` keys (theirs: no counterpart here, or another
    shape, e.g. Φ's 3-wide input when our text features are wider) and ``missing`` keys (ours, left as
    initialised).
    """
    mapped, ignored = {}, []
    for key, value in state.items():
        ours = public_key_to_ours(key)
        if ours in target and tuple(target[ours].shape) == tuple(value.shape):
            mapped[ours] = value
        else:
            ignored.append(key)
    missing = [key for key in target if key not in mapped]
    return mapped, {"mapped": sorted(mapped), "ignored": ignored, "missing": missing}
