"""One decoder layer's hidden state at each generation step, kept by a hook while ``generate`` runs.

``generate(..., output_hidden_states=True)`` keeps every layer's states of the whole prompt and of every step
until the batch ends ((layers + 1) × batch × prompt length × hidden). The ``hidden`` features need one layer at
the position that emits each answer token: a hook on that layer keeps only those, batch × steps × hidden.

Layers are numbered as ``output_hidden_states`` numbers them: 0 is the first decoder layer's input (the
embeddings), i the i-th layer's output, and the last (-1) the decoder's output (after its final norm, if any).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from engine.errors import InputError


@contextmanager
def last_position_states(decoder: nn.Module, layers: Sequence[nn.Module], layer: int) -> Iterator[list[torch.Tensor]]:
    """Within the block, each forward call of ``decoder`` (one a generation step) appends hidden state ``layer``
    at the last position, (B, 1, H), to the yielded list; ``decoder``'s layers are ``layers``, in order."""
    count = len(layers) + 1
    if not -count <= layer < count:
        raise InputError(f"--layer {layer}: the model has {count} hidden-state layers (0 = embeddings)")
    index = layer % count
    states: list[torch.Tensor] = []

    def keep(hidden: torch.Tensor) -> None:
        states.append(hidden[:, -1:].detach())

    def layer_input(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        keep(args[0] if args else kwargs["hidden_states"])

    def decoder_output(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        keep(output[0])

    handle = (decoder.register_forward_hook(decoder_output) if index == count - 1
              else layers[index].register_forward_pre_hook(layer_input, with_kwargs=True))
    try:
        yield states
    finally:
        handle.remove()
