"""Full precision inside autocast: the parts that bfloat16 / float16 would hurt run in float32.

Under ``--amp`` the convolutions and matrix products run in the low-precision dtype. The topology refinement
(embeddings of temporal means, ``tanh`` of their differences, the refined adjacency and its products with the
features), the BatchNorm after it, the classifier (pooling and the linear layer: bfloat16 logits tie) and the
losses compute in float32 instead: :func:`full_precision` switches autocast off for a region and :func:`wide`
lifts its low-precision inputs. Without autocast both change nothing (float32 and float64 tensors pass
through uncopied).
"""
from __future__ import annotations

import contextlib

import torch


def wide_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for the narrower floating dtypes (bfloat16, float16), else ``dtype`` (float32, float64)."""
    return torch.promote_types(dtype, torch.float32)


def wide(x: torch.Tensor) -> torch.Tensor:
    """``x`` in :func:`wide_dtype` of its dtype: a float32 copy of a narrower tensor, else ``x`` itself."""
    return x.to(wide_dtype(x.dtype))


def full_precision(x: torch.Tensor) -> contextlib.AbstractContextManager:
    """A region with autocast off on ``x``'s device: its ops run in the dtype of their inputs (lift them with
    :func:`wide`). Nothing to switch (and no cost) when autocast is off already."""
    device = x.device.type
    return torch.autocast(device, enabled=False) if torch.is_autocast_enabled(device) else contextlib.nullcontext()
