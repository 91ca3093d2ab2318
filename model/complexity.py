"""Model size and cost: parameters and multiply-accumulates of one forward pass."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers excluded)."""
    return sum(parameter.numel() for parameter in model.parameters())


def macs_per_sample(model: nn.Module, sample: torch.Tensor) -> float:
    """Multiply-accumulates of one evaluation forward pass on ``sample`` (a batch of one).

    Autograd stays enabled: the counter's module tracker needs it for parameters passed as arguments.
    """
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(sample)
    return counter.get_total_flops() / 2
