"""Visual question answering with Hugging Face ``transformers`` models: BLIP VQA or a generic chat VLM.

    answerer = load_answerer("Salesforce/blip-vqa-base")            # or a local folder
    answerer.answer([strip_image], ["whether the people are holding objects?"])   # -> ["yes"]

Backends:

- ``blip`` (default): ``BlipForQuestionAnswering`` + ``BlipProcessor`` (the BLIP the paper names).
- ``image-text-to-text``: chat VLMs (LLaVA, Qwen2-VL, ...) through ``AutoProcessor`` +
  ``AutoModelForImageTextToText``; each question goes through the processor's chat template as one user turn
  holding the image and the text, and only the newly generated tokens are decoded.

Decoding is greedy. Weights come from the Hub or a local folder (``save_pretrained`` layout);
``trust_remote_code`` stays False unless the caller asks for it. On CUDA the model runs in float16, on the
CPU in float32.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    BatchFeature,
    BlipForQuestionAnswering,
    BlipProcessor,
)

from engine.errors import InputError


class VisualQuestionAnswerer(ABC):
    """A loaded model and its processor; ``answer`` asks one question about each image."""

    processor_class: ClassVar[Any]
    model_class: ClassVar[Any]

    def __init__(self, model: torch.nn.Module, processor: Any, max_new_tokens: int = 20) -> None:
        self.model, self.processor, self.max_new_tokens = model.eval(), processor, max_new_tokens

    def answer(self, images: list[Image.Image], questions: list[str]) -> list[str]:
        """The answer to ``questions[i]`` about ``images[i]``, for every i."""
        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images but {len(questions)} questions")
        if not images:
            return []
        inputs = self.inputs(images, questions).to(self.model.device, dtype=self.model.dtype)
        with torch.inference_mode():
            tokens = self.model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=self.max_new_tokens)
        return [text.strip() for text in self.processor.batch_decode(self.answer_tokens(tokens, inputs),
                                                                     skip_special_tokens=True)]

    @abstractmethod
    def inputs(self, images: list[Image.Image], questions: list[str]) -> BatchFeature:
        """The model's inputs for a batch of (image, question) pairs."""

    def answer_tokens(self, tokens: torch.Tensor, inputs: BatchFeature) -> torch.Tensor:
        """The part of ``generate``'s output that is the answer."""
        return tokens


class BlipAnswerer(VisualQuestionAnswerer):
    """BLIP VQA: the question is encoded against the image and the decoder generates only the answer.

    As in BLIP's own code, the decoder attends to every question position, padding included, so a batch
    mixing questions of different lengths may answer slightly differently than one question at a time.
    """

    processor_class = BlipProcessor
    model_class = BlipForQuestionAnswering

    def inputs(self, images: list[Image.Image], questions: list[str]) -> BatchFeature:
        return self.processor(images=images, text=questions, padding=True, return_tensors="pt")


class ChatAnswerer(VisualQuestionAnswerer):
    """A chat VLM: one user turn (image, question) through the chat template; prompts are left-padded.

    The tests exercise it on a tiny random LLaVA only; real checkpoints (LLaVA, Qwen2-VL, ...) are not run offline.
    """

    processor_class = AutoProcessor
    model_class = AutoModelForImageTextToText

    def __init__(self, model: torch.nn.Module, processor: Any, max_new_tokens: int = 20) -> None:
        super().__init__(model, processor, max_new_tokens)
        processor.tokenizer.padding_side = "left"

    def inputs(self, images: list[Image.Image], questions: list[str]) -> BatchFeature:
        conversations = [[{"role": "user", "content": [{"type": "image", "image": image},
                                                       {"type": "text", "text": question}]}]
                         for image, question in zip(images, questions)]
        return self.processor.apply_chat_template(conversations, add_generation_prompt=True, tokenize=True,
                                                  return_dict=True, return_tensors="pt",
                                                  processor_kwargs={"padding": True})

    def answer_tokens(self, tokens: torch.Tensor, inputs: BatchFeature) -> torch.Tensor:
        return tokens[:, inputs["input_ids"].shape[1]:]


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
                  local_files_only: bool = False, trust_remote_code: bool = False) -> VisualQuestionAnswerer:
    """Load ``model`` (Hub id or local folder) for ``backend``, in eval mode on ``device`` (see ``resolve_device``)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    kind, where = BACKENDS[backend], resolve_device(device)
    options = {"local_files_only": local_files_only, "trust_remote_code": trust_remote_code}
    processor = from_pretrained(kind.processor_class, model, **options)
    dtype = torch.float16 if where.type == "cuda" else torch.float32
    network = from_pretrained(kind.model_class, model, dtype=dtype, **options).to(where)
    return kind(network, processor, max_new_tokens)
