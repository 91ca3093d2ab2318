"""Test-time refinement (docs/method.md §4, §7 "w/ refine"): the refined scores S_R of a trained FRM.

FRM is a training helper; only the zero-shot study also predicts with ``S_R``. The FRM weights come from
the checkpoint being tested (ours: the ``frm.*`` entries of its ``model``; the public MMCL layout:
``mlp.*``, ``PosMatrix``, ``NegMatrix``) and each test sample's text feature from a text feature store.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from engine.checkpoint import CHECKPOINT_FORMAT, bare_state_dict, load_state
from engine.errors import InputError
from feeders.feature_store import open_feature_stores
from model.frm import FeatureRefinement
from model.public_mmcl import is_public_mmcl, public_key_to_ours

_PREFIX = "frm."


def refinement_state(content: Any, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """FRM's weights (``phi.*``, ``pos``, ``neg``) inside a checkpoint's content."""
    if isinstance(content, dict) and content.get("format") == CHECKPOINT_FORMAT:
        ours = content["model"]
    else:
        state = bare_state_dict(content) or {}
        ours = {public_key_to_ours(key): value for key, value in state.items()} if is_public_mmcl(state) else {}
    frm = {key[len(_PREFIX):]: value for key, value in ours.items() if key.startswith(_PREFIX)}
    if "phi.0.weight" not in frm:
        raise InputError(f"{path}: holds no FRM weights (refinement needs a checkpoint trained with mmcl.frm: true)")
    return frm


def load_refinement(content: Any, path: str | os.PathLike, num_class: int) -> FeatureRefinement:
    """The trained FRM of a checkpoint, in eval mode; its widths are read from the weights."""
    state = refinement_state(content, path)
    hidden, text_dim = state["phi.0.weight"].shape
    frm = FeatureRefinement(text_dim, num_class, hidden)
    load_state(frm, state, path)
    return frm.eval()


@torch.inference_mode()
def refined_scores(
    frm: FeatureRefinement, scores: np.ndarray, names: Sequence[str],
    text_store: str | os.PathLike | Sequence[str | os.PathLike], combine: str = "concat"
) -> np.ndarray:
    """``S_R`` (N, K) of the backbone's ``scores`` for the samples ``names``, whose text features are in the store
    (or the stores, combined as in training)."""
    store = open_feature_stores(text_store, "text", combine)
    store.check_dim(frm.phi[0].in_features)
    store.check(names)
    text = torch.from_numpy(store.gather(store.rows_for(names)))
    return frm.refine(torch.from_numpy(scores), {"text": text}).numpy()
