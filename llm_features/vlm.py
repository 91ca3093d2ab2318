"""Visual question answering with Hugging Face ``transformers`` models: BLIP VQA or a generic chat VLM.

    answerer = load_answerer("Salesforce/blip-vqa-capfilt-large")   # or a local folder
    answerer.answer([strip_image], ["whether the people are holding objects?"])   # -> ["yes"]

Backends:

- ``blip`` (default): ``BlipForQuestionAnswering`` + ``BlipProcessor`` (the BLIP the paper names).
- ``image-text-to-text``: chat VLMs (LLaVA, Qwen2-VL, ...) through ``AutoProcessor`` +
  ``AutoModelForImageTextToText``; each question goes through the processor's chat template as one user turn
  holding the image and the text, and only the newly generated tokens are decoded.

``generate`` also returns what the features are made of: the answer's token ids and, when asked, one layer's
hidden state at each generation step (the state that emitted each answer token), kept by a hook on that layer
(``llm_features.layer_tap``) rather than ``output_hidden_states``, which would keep every layer's states.

Decoding is greedy unless ``num_beams`` asks for beam search; answers are ``min_new_tokens`` to
``max_new_tokens`` tokens long (after the prompt, or BLIP's [DEC] start token). BLIP's own VQA inference, which the
public MMCL script ran, is 3 beams, ``max_length`` 10 and ``min_length`` 1 counting [DEC]: ``num_beams=3,
max_new_tokens=9, min_new_tokens=0``, on ``image_size=480`` (``BlipAnswerer``). Weights come from the Hub or a
local folder (``save_pretrained`` layout); ``trust_remote_code`` stays False unless the caller asks for it. On CUDA
the model runs in float16 (or the ``dtype`` asked for, e.g. bfloat16 or float32), on the CPU in float32.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    BatchFeature,
    BlipForQuestionAnswering,
    BlipProcessor,
)
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from engine.errors import InputError
from llm_features.layer_tap import last_position_states


@dataclass
class Generation:
    """One batch's generation: answers, their token ids, and optionally one layer's hidden state per step."""

    answers: list[str]
    tokens: torch.Tensor           # (B, T) the answer part of generate's output (see ``answer_tokens``), pad after EOS
    valid: torch.Tensor            # (B, S) per generation step: True up to and including each answer's EOS
    states: torch.Tensor | None    # (B, S, H) float32 hidden states that emitted each step's token, or None


class VisualQuestionAnswerer(ABC):
    """A loaded model and its processor; ``answer`` asks one question about each image, decoding as set here:
    ``num_beams`` (1 = greedy), answers of ``min_new_tokens`` to ``max_new_tokens`` generated tokens."""

    processor_class: ClassVar[Any]
    model_class: ClassVar[Any]

    def __init__(self, model: torch.nn.Module, processor: Any, max_new_tokens: int = 20, num_beams: int = 1,
                 min_new_tokens: int = 0) -> None:
        self.model, self.processor = model.eval(), processor
        self.max_new_tokens, self.num_beams, self.min_new_tokens = max_new_tokens, num_beams, min_new_tokens

    @property
    def pad_id(self) -> int:
        """The id that pads finished answers (the tokenizer's pad, else 0)."""
        pad = self.model.generation_config.pad_token_id
        if pad is None:
            pad = getattr(getattr(self.processor, "tokenizer", None), "pad_token_id", None)
        return int(pad[0] if isinstance(pad, list) else pad or 0)

    def answer(self, images: list[Image.Image], questions: list[str]) -> list[str]:
        """The answer to ``questions[i]`` about ``images[i]``, for every i."""
        return self.generate(images, questions).answers if images else []

    def generate(self, images: list[Image.Image], questions: list[str], layer: int | None = None) -> Generation:
        """Answers to ``questions[i]`` about ``images[i]``; ``layer`` (0 = embeddings, -1 = last) adds that layer's
        hidden states, which needs greedy decoding."""
        if len(images) != len(questions) or not images:
            raise ValueError(f"expected as many questions as images, at least one: {len(images)} and {len(questions)}")
        if layer is not None and self.num_beams > 1:
            raise InputError(f"hidden states need greedy decoding (--num-beams 1), not {self.num_beams} beams: "
                             "the layer hook keeps one state a decoder call, beam search runs all beams in each")
        inputs = self.inputs(images, questions).to(self.model.device, dtype=self.model.dtype)
        tap = nullcontext([]) if layer is None else last_position_states(*self.decoder_layers(), layer)
        with torch.inference_mode(), tap as kept:
            sequences = self.model.generate(**inputs, do_sample=False, num_beams=self.num_beams,
                                            max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens,
                                            return_dict_in_generate=True).sequences
        tokens = self.answer_tokens(sequences, inputs)
        answers = [text.strip() for text in self.processor.batch_decode(tokens, skip_special_tokens=True)]
        steps = sequences[:, self.prompt_length(inputs):]
        eos = self.model.generation_config.eos_token_id
        is_eos = torch.isin(steps, torch.tensor([] if eos is None else eos, dtype=torch.long, device=steps.device))
        valid = (is_eos.long().cumsum(dim=1) - is_eos.long()) == 0
        states = None
        if layer is not None:
            if len(kept) != steps.shape[1]:
                raise RuntimeError(f"{type(self.model).__name__}: {len(kept)} decoder calls for {steps.shape[1]} "
                                   "generated tokens; the hidden-state hook expects one a step")
            states = torch.cat(kept, dim=1).float().cpu()
        return Generation(answers, tokens.cpu(), valid.cpu(), states)

    @abstractmethod
    def decoder_layers(self) -> tuple[nn.Module, nn.ModuleList]:
        """The module that runs once per generation step on the answer so far, and its layers in order."""

    @abstractmethod
    def inputs(self, images: list[Image.Image], questions: list[str]) -> BatchFeature:
        """The model's inputs for a batch of (image, question) pairs."""

    def answer_tokens(self, tokens: torch.Tensor, inputs: BatchFeature) -> torch.Tensor:
        """The part of ``generate``'s output that is the answer."""
        return tokens

    def prompt_length(self, inputs: BatchFeature) -> int:
        """How many leading positions of ``generate``'s output were given, not generated."""
        return inputs["input_ids"].shape[1]


def clip_square(image: Image.Image, size: int) -> torch.Tensor:
    """(3, size, size) float32: the whole ``image`` squashed to size × size (bicubic, aspect ratio not kept),
    scaled to [0, 1] and normalised with the CLIP mean and std: BLIP's own image transform."""
    pixels = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    mean, std = np.asarray(OPENAI_CLIP_MEAN, np.float32), np.asarray(OPENAI_CLIP_STD, np.float32)
    return torch.from_numpy((pixels - mean) / std).permute(2, 0, 1)


class BlipAnswerer(VisualQuestionAnswerer):
    """BLIP VQA: the question is encoded against the image and the decoder generates only the answer.

    Its answer tokens start with the decoder's [DEC] token, as ``generate`` returns them and as the public MMCL
    script stored them.

    Images go through the processor (its size, resampling and normalisation), or, with ``image_size``, through
    ``clip_square`` at that size, as BLIP's own code feeds its ViT; the position embeddings are interpolated when
    ``image_size`` is not the size the vision tower was made for.

    As in BLIP's own code, the question starts with its [ENC] token (id [DEC] + 1 in BLIP's tokenizer), not the
    tokenizer's [CLS], which transformers' BLIP leaves in place (transformers issue 22732); and the decoder attends
    to every question position, padding included, so a batch mixing questions of different lengths may answer
    slightly differently than one question at a time.
    """

    processor_class = BlipProcessor
    model_class = BlipForQuestionAnswering

    def __init__(self, model: torch.nn.Module, processor: Any, max_new_tokens: int = 20, num_beams: int = 1,
                 min_new_tokens: int = 0, image_size: int | None = None) -> None:
        super().__init__(model, processor, max_new_tokens, num_beams, min_new_tokens)
        self.image_size = image_size

    def decoder_layers(self) -> tuple[nn.Module, nn.ModuleList]:
        decoder = self.model.text_decoder.bert
        return decoder, decoder.encoder.layer

    @property
    def enc_token_id(self) -> int:
        """BLIP's [ENC]: the tokenizer's own if it has one, else the id after [DEC], as BLIP's tokenizer adds it."""
        tokenizer, text = self.processor.tokenizer, self.model.config.text_config
        enc = tokenizer.convert_tokens_to_ids("[ENC]")
        if enc is None or enc == tokenizer.unk_token_id:
            enc = text.bos_token_id + 1
        if not 0 <= enc < text.vocab_size:
            raise InputError(f"BLIP model: no [ENC] token (id {enc} is outside its vocabulary of {text.vocab_size})")
        return enc

    def inputs(self, images: list[Image.Image], questions: list[str]) -> BatchFeature:
        if self.image_size is None:
            inputs = self.processor(images=images, text=questions, padding=True, return_tensors="pt")
        else:
            inputs = self.processor(text=questions, padding=True, return_tensors="pt")
            inputs["pixel_values"] = torch.stack([clip_square(image, self.image_size) for image in images])
            if self.image_size != self.model.config.vision_config.image_size:
                inputs["interpolate_pos_encoding"] = True
        inputs["input_ids"][:, 0] = self.enc_token_id
        return inputs

    def prompt_length(self, inputs: BatchFeature) -> int:
        return 1  # the decoder starts from its [DEC] token; the question goes through the encoder


class ChatAnswerer(VisualQuestionAnswerer):
    """A chat VLM: one user turn (image, question) through the chat template; prompts are left-padded.

    The tests exercise it on a tiny random LLaVA only; real checkpoints (LLaVA, Qwen2-VL, ...) are not run offline.
    """

    processor_class = AutoProcessor
    model_class = AutoModelForImageTextToText

    def __init__(self, model: torch.nn.Module, processor: Any, max_new_tokens: int = 20, num_beams: int = 1,
                 min_new_tokens: int = 0) -> None:
        super().__init__(model, processor, max_new_tokens, num_beams, min_new_tokens)
        processor.tokenizer.padding_side = "left"

    def decoder_layers(self) -> tuple[nn.Module, nn.ModuleList]:
        decoder = self.model.get_decoder()
        layers = getattr(decoder, "layers", None)
        if not isinstance(layers, nn.ModuleList):
            raise InputError(f"--features hidden: cannot find the decoder layers of {type(self.model).__name__} "
                             f"(its decoder {type(decoder).__name__} has no 'layers' list)")
        return decoder, layers

    def inputs(self, images: list[Image.Image], questions: list[str]) -> BatchFeature:
        conversations = [[{"role": "user", "content": [{"type": "image", "image": image},
                                                       {"type": "text", "text": question}]}]
                         for image, question in zip(images, questions)]
        return self.processor.apply_chat_template(conversations, add_generation_prompt=True, tokenize=True,
                                                  return_dict=True, return_tensors="pt",
                                                  processor_kwargs={"padding": True})

    def answer_tokens(self, tokens: torch.Tensor, inputs: BatchFeature) -> torch.Tensor:
        return tokens[:, self.prompt_length(inputs):]


BACKENDS: dict[str, type[VisualQuestionAnswerer]] = {"blip": BlipAnswerer, "image-text-to-text": ChatAnswerer}


def resolve_device(name: str | None = None) -> torch.device:
    """``name`` ('cpu', 'cuda', 'cuda:1'), or CUDA when available and the CPU otherwise."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}: expected cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} asked for, but CUDA is not available")
    return device


def from_pretrained(loader: Any, source: str, **options: Any) -> Any:
    """``loader.from_pretrained(source, **options)``; a failure is an ``InputError`` naming ``source``."""
    try:
        return loader.from_pretrained(source, **options)
    except (OSError, ValueError) as err:
        where = "folder" if Path(source).is_dir() else "Hub id (no such folder)"
        reason = " ".join(str(err).split())
        raise InputError(f"--model {source}: cannot load {loader.__name__} from this {where}: {reason}") from None


def load_answerer(model: str, backend: str = "blip", device: str | None = None, max_new_tokens: int = 20,
                  local_files_only: bool = False, trust_remote_code: bool = False,
                  dtype: torch.dtype | None = None, num_beams: int = 1, min_new_tokens: int = 0,
                  image_size: int | None = None) -> VisualQuestionAnswerer:
    """Load ``model`` (Hub id or local folder) for ``backend``, in eval mode on ``device`` (see ``resolve_device``),
    in ``dtype`` (default: float16 on CUDA, float32 on the CPU), decoding with ``num_beams`` into answers of
    ``min_new_tokens`` to ``max_new_tokens`` tokens; ``image_size``: see ``BlipAnswerer`` (blip only)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if image_size is not None and backend != "blip":
        raise InputError(f"--image-size {image_size}: the {backend} backend resizes as its processor does")
    kind, where = BACKENDS[backend], resolve_device(device)
    options = {"local_files_only": local_files_only, "trust_remote_code": trust_remote_code}
    processor = from_pretrained(kind.processor_class, model, **options)
    dtype = dtype or (torch.float16 if where.type == "cuda" else torch.float32)
    network = from_pretrained(kind.model_class, model, dtype=dtype, **options).to(where)
    sizing = {} if image_size is None else {"image_size": image_size}
    return kind(network, processor, max_new_tokens, num_beams, min_new_tokens, **sizing)
