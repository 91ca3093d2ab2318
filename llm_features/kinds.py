"""The text features a VLM run stores per sample (docs/method.md §4), one row per answer.

- ``clip-text``: the answer text embedded by a frozen open_clip text tower (``llm_features.text_encoder``);
- ``hidden``: the VLM's own hidden states of one layer, pooled over the answer (``mean`` over the states that
  emitted the answer's tokens up to and including its end token, or the ``last`` of them);
- ``token-ids``: the first ``k`` ids of the answer as ``generate`` returns it, padded with the pad id: the
  public MMCL FRM's input (``k = 3``, read through ``Linear(3→64)``).
"""
from __future__ import annotations

import numpy as np
import torch

from llm_features.vlm import Generation

KINDS = ("clip-text", "hidden", "token-ids")
POOLS = ("mean", "last")


def token_ids(generation: Generation, k: int, pad_id: int) -> np.ndarray:
    """(B, k) float32: the first ``k`` answer token ids of each sample, padded with ``pad_id``."""
    tokens = generation.tokens[:, :k]
    padded = torch.full((len(tokens), k), pad_id, dtype=torch.long)
    padded[:, :tokens.shape[1]] = tokens
    return padded.numpy().astype(np.float32)


def pooled_hidden(generation: Generation, pool: str) -> np.ndarray:
    """(B, H) float32: each sample's hidden states over its answer, averaged (``mean``) or the ``last`` one."""
    if generation.states is None:
        raise ValueError("the generation holds no hidden states: generate it with a layer")
    valid = generation.valid.float().unsqueeze(2)
    if pool == "mean":
        pooled = (generation.states * valid).sum(dim=1) / valid.sum(dim=1)
    else:
        last = generation.valid.long().sum(dim=1) - 1
        pooled = generation.states[torch.arange(len(last)), last]
    return pooled.numpy()
