"""Which kernels the backbones run, and how float32 products compute on CUDA (TF32); see ``docs/gpu.md``.

The backbones have two ways to compute the same layers, with the same parameters:

- ``"cpu"``, the fused kernels: a 1x1 convolution is one batched matrix product over its weight expanded
  along the batch, and the temporal max-pool runs in channels-last layout. oneDNN is about twice as fast
  this way (``bench.bench_backbone``).
- ``"cuda"``, the library kernels: ``F.conv2d`` / ``F.conv1d`` (cuDNN) with the parameters as they are, and
  the max-pool in the tensors' own layout. Under autocast only the small weight is cast, never a per-sample
  copy of it, and float32 convolutions follow cuDNN's TF32 setting (:func:`tf32`).

The choice is made at forward time from the input tensor's device: the fused kernels on the CPU, the library
ones on any other device. :func:`use` forces one of them (tests check both on the CPU).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

#: The kernel choices :func:`use` accepts.
KINDS = ("cpu", "cuda")
_forced: str | None = None  # a module global, not a context variable: DataParallel's threads must see it


@contextlib.contextmanager
def use(kind: str) -> Iterator[None]:
    """Run the backbones with the ``"cpu"`` (fused) or ``"cuda"`` (library) kernels whatever the device."""
    global _forced
    if kind not in KINDS:
        raise ValueError(f"kernels: expected one of {', '.join(KINDS)}, got {kind!r}")
    previous, _forced = _forced, kind
    try:
        yield
    finally:
        _forced = previous


def fused(x: torch.Tensor) -> bool:
    """True when the fused CPU kernels compute on ``x``: forced by :func:`use`, else when ``x`` is on the CPU."""
    return x.device.type == "cpu" if _forced is None else _forced == "cpu"


def tf32_flags() -> tuple[bool, bool]:
    """The current (``torch.backends.cuda.matmul.allow_tf32``, ``torch.backends.cudnn.allow_tf32``)."""
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


def set_tf32_flags(matmul: bool, cudnn: bool) -> None:
    """Set ``torch.backends.cuda.matmul.allow_tf32`` (cuBLAS float32 products; ``torch.set_float32_matmul_precision``
    "high" when true, "highest" when false) and ``torch.backends.cudnn.allow_tf32`` (cuDNN float32 convolutions)."""
    torch.backends.cuda.matmul.allow_tf32 = matmul
    torch.backends.cudnn.allow_tf32 = cudnn


@contextlib.contextmanager
def tf32(enabled: bool, device: torch.device) -> Iterator[None]:
    """A run on ``device`` with TF32 on (``enabled``) or off for both float32 matrix products and convolutions;
    the previous flags come back afterwards. On any device but CUDA the flags mean nothing and are left alone."""
    if device.type != "cuda":
        yield
        return
    previous = tf32_flags()
    set_tf32_flags(enabled, enabled)
    try:
        yield
    finally:
        set_tf32_flags(*previous)
