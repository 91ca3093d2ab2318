"""Tiny randomly initialised vision-language models saved as local model folders, and strips to ask them about
(tests and benches, offline)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    BertTokenizerFast,
    BlipConfig,
    BlipForQuestionAnswering,
    BlipImageProcessor,
    BlipProcessor,
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

WORDS = ["yes", "no", "the", "people", "person", "hand", "foot", "head", "are", "is", "holding", "touching",
         "objects", "whether", "please", "describe", "a", "cup", "?", "."]

NAMES = [f"S001C001P001R001A{i:03d}" for i in range(1, 6)]


def strip_image(seed: int) -> Image.Image:
    """A random 24 × 120 RGB image standing for a temporal strip."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (24, 120, 3), dtype=np.uint8))


def write_strips(root: Path, names: list[str]) -> dict[str, Path]:
    """``<root>/strips/<name>.jpg`` for ``names`` and a names file listing them (with a comment line, as
    tools.make_holdout writes)."""
    folder = root / "strips"
    folder.mkdir(parents=True)
    for seed, name in enumerate(names):
        strip_image(seed).save(folder / f"{name}.jpg")
    listing = root / "names.txt"
    listing.write_text("# all samples\n" + "\n".join(names) + "\n")
    return {"images": folder, "names": listing}


def save_tiny_blip(root: Path, layers: int = 1, image_size: int = 32, patch_size: int = 8) -> Path:
    """A tiny BLIP VQA model (``layers`` per text tower, a ViT for ``image_size`` px images in patches of
    ``patch_size``) and its processor (word vocabulary, ``image_size`` px images) in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *WORDS, "[ENC]"]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(str(root / "vocab.txt"), bos_token="[DEC]")
    BlipProcessor(BlipImageProcessor(size={"height": image_size, "width": image_size}), tokenizer).save_pretrained(root)
    sizes = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2}
    config = BlipConfig(
        text_config={**sizes, "num_hidden_layers": layers, "vocab_size": len(vocab), "encoder_hidden_size": 32,
                     "max_position_embeddings": 64, "pad_token_id": 0, "sep_token_id": 3, "eos_token_id": 3, "bos_token_id": vocab.index("[DEC]"),
                     "initializer_range": 0.5},
        vision_config={**sizes, "num_hidden_layers": 1, "image_size": image_size, "patch_size": patch_size,
                       "initializer_range": 0.5},
        projection_dim=32, image_text_hidden_size=32)
    torch.manual_seed(0)
    BlipForQuestionAnswering(config).save_pretrained(root)
    (root / "vocab.txt").unlink()
    return root


def save_tiny_llava(root: Path, layers: int = 1, width: int = 16, image_size: int = 16) -> Path:
    """A tiny LLaVA (CLIP vision + Llama text of ``layers`` × ``width``; ``image_size`` px images in patches of 8,
    one prompt token each) with a word-level tokenizer and chat template in ``root``."""
    vocab = ["<pad>", "<unk>", "<s>", "</s>", "<image>", "USER:", "ASSISTANT:", *WORDS]
    words = Tokenizer(models.WordLevel({word: i for i, word in enumerate(vocab)}, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>", unk_token="<unk>",
                                        bos_token="<s>", eos_token="</s>",
                                        extra_special_tokens={"image_token": "<image>"})
    template = ("{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
                "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endfor %}"
                "{% if add_generation_prompt %}ASSISTANT: {% endif %}")
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8, chat_template=template,
                   vision_feature_select_strategy="default", num_additional_image_tokens=1).save_pretrained(root)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=image_size, patch_size=8, projection_dim=16,
                                       initializer_range=0.5),
        text_config=LlamaConfig(vocab_size=len(vocab), hidden_size=width, intermediate_size=2 * width,
                                num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1,
                                max_position_embeddings=max(64, 2 * (image_size // 8) ** 2),
                                pad_token_id=0, bos_token_id=2, eos_token_id=3, initializer_range=0.5),
        image_token_index=vocab.index("<image>"), vision_feature_layer=-1)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(root)
    return root
