"""Straightforward ``hidden`` states: ``generate(..., output_hidden_states=True)``, then one layer picked out.

The way ``llm_features.vlm`` read them before its layer hook (``llm_features.layer_tap``): the baseline of
``bench.bench_llm_features --memory`` and the oracle of the equivalence test. ``generate`` keeps every layer's
states of the whole prompt and of each step until the batch ends.
"""
from __future__ import annotations

import torch
from PIL import Image

from llm_features.vlm import VisualQuestionAnswerer


def generate_all_states(answerer: VisualQuestionAnswerer, images: list[Image.Image], questions: list[str]
                        ) -> tuple[tuple[tuple[torch.Tensor, ...], ...], torch.Tensor]:
    """``generate``'s hidden states (per step, per layer) and its sequences, greedy as ``answerer`` decodes."""
    inputs = answerer.inputs(images, questions).to(answerer.model.device, dtype=answerer.model.dtype)
    with torch.inference_mode():
        out = answerer.model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=answerer.max_new_tokens,
                                      output_hidden_states=True, return_dict_in_generate=True)
    return out.hidden_states, out.sequences


def layer_states(answerer: VisualQuestionAnswerer, images: list[Image.Image], questions: list[str], layer: int
                 ) -> torch.Tensor:
    """(B, steps, H) float32: hidden state ``layer`` that emitted each generated token."""
    steps, _ = generate_all_states(answerer, images, questions)
    return torch.cat([step[layer][:, -1:] for step in steps], dim=1).float()
