"""Pretrain the demo's small CLIP (``mmcl-demo-tiny``) on rendered image-caption pairs: pretrained-like encoders.

    python -m tools.pretrain_demo_clip --out data/demo_clip [--images 4000] [--epochs 10] [--seed 0]

No CLIP weights can be downloaded here, and random towers carry little that co-learning could pass on. This
trains the project's registered open_clip config ``mmcl-demo-tiny`` contrastively on a corpus of its own
(``feeders.demo_corpus``: people, held objects, clothes, hand places, postures; never an action label) and
writes ``<out>/mmcl-demo-tiny.pt``, an open_clip state dict that the ordinary loading path takes
(``--model mmcl-demo-tiny --pretrained <out>/mmcl-demo-tiny.pt``, or ``rgb_encoder.pretrained``), exactly as
it takes real CLIP weights. ``<out>/report.json`` (written last) holds the arguments, the loss per epoch and
the towers' quality on held-out images, pretrained against the random initialisation: zero-shot recognition
of the held object (which of the image's caption with each of the four object phrases fits best), and
image-to-caption retrieval. A folder that already holds a run with
the same arguments is reused; the same arguments and thread count give the same weights.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from collections.abc import Sequence
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import torch
from PIL import Image

from engine.errors import InputError, command
from engine.fileio import cached_json, write_bytes_atomic, write_text_atomic
from feeders.demo_corpus import OBJECT_PHRASES, CorpusItem, make_corpus_item, with_object
from model.clip_configs import register_project_clip_configs

MODEL = "mmcl-demo-tiny"
CHECKPOINT = f"{MODEL}.pt"
REPORT = "report.json"
#: Corpus images are rendered at the demo strips' panel size; the encoder's transform resizes them.
RENDER_SIZE = 96


def render_corpus(seed: int, indices: range, workers: int) -> list[CorpusItem]:
    """The corpus items ``indices`` (rendered in ``workers`` processes when more than one)."""
    make = partial(make_corpus_item, seed, size=RENDER_SIZE)
    if workers <= 1:
        return [make(i) for i in indices]
    with get_context("spawn").Pool(workers) as pool:
        return pool.map(make, indices, chunksize=64)


def _images(items: Sequence[CorpusItem], preprocess) -> torch.Tensor:
    return torch.stack([preprocess(Image.fromarray(item.image)) for item in items])


@torch.no_grad()
def _encode(encoder, inputs: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """L2-normalised features of ``inputs`` by ``encoder`` (a model's encode_image or encode_text)."""
    return torch.cat([encoder(inputs[i:i + batch], normalize=True) for i in range(0, len(inputs), batch)])


def evaluate(model, tokenizer, images: torch.Tensor, items: Sequence[CorpusItem]) -> dict[str, float]:
    """Held-out quality: zero-shot object recognition (which of the image's caption with each of the four object
    phrases matches best) and image-to-caption retrieval R@1 among all held-out captions."""
    model.eval()
    image = _encode(model.encode_image, images)
    text = _encode(model.encode_text, tokenizer([item.caption for item in items]))
    choices = list(OBJECT_PHRASES)
    variants = _encode(model.encode_text, tokenizer([with_object(item, held) for item in items for held in choices]))
    scores = (image[:, None] * variants.reshape(len(items), len(choices), -1)).sum(-1)
    truth = torch.tensor([choices.index(item.held) for item in items])
    object_top1 = scores.argmax(1).eq(truth).float().mean().item()
    retrieval_r1 = (image @ text.t()).argmax(1).eq(torch.arange(len(items))).float().mean().item()
    return {"object_top1": object_top1, "retrieval_r1": retrieval_r1, "object_chance": 1 / len(choices)}


def train(model, images: torch.Tensor, tokens: torch.Tensor, epochs: int, batch_size: int, lr: float,
          seed: int) -> list[float]:
    """Contrastive training (open_clip's ClipLoss, AdamW, warm-up then cosine); returns the mean loss per epoch."""
    import open_clip

    loss_fn = open_clip.ClipLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps_per_epoch = len(images) // batch_size
    total, warmup = epochs * steps_per_epoch, steps_per_epoch
    generator = torch.Generator().manual_seed(seed)
    losses, step = [], 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        epoch_loss = 0.0
        for start in range(0, steps_per_epoch * batch_size, batch_size):
            scale = (step + 1) / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
            for group in optimizer.param_groups:
                group["lr"] = lr * scale
            batch = order[start:start + batch_size]
            image = model.encode_image(images[batch], normalize=True)
            text = model.encode_text(tokens[batch], normalize=True)
            loss = loss_fn(image, text, model.logit_scale.exp())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            epoch_loss += loss.item()
            step += 1
        losses.append(epoch_loss / steps_per_epoch)
        print(f"epoch {epoch + 1}/{epochs}: contrastive loss {losses[-1]:.4f}", flush=True)
    return losses


def _cached(out: Path, settings: dict) -> bool:
    """Whether ``out`` holds a finished run made with ``settings``."""
    report = cached_json(out / REPORT)
    return isinstance(report, dict) and report.get("args") == settings and (out / CHECKPOINT).is_file()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.pretrain_demo_clip", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/demo_clip"), help="output folder (default: %(default)s)")
    parser.add_argument("--images", type=int, default=4000, help="training image-caption pairs (default: %(default)s)")
    parser.add_argument("--eval-images", type=int, default=500,
                        help="held-out pairs for the quality report (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training pairs (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=128, help="pairs per step (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=2e-3,
                        help="AdamW's learning rate after the warm-up (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the corpus, the initialisation and the shuffling (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="processes rendering the corpus (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a run made with other arguments (default: refuse)")
    return parser


@command
def main(argv: Sequence[str] | None = None) -> int:
    import open_clip

    args = build_parser().parse_args(argv)
    for key in ("images", "eval_images", "epochs", "batch_size"):
        if getattr(args, key) < 1:
            raise InputError(f"--{key.replace('_', '-')} must be a positive integer, got {getattr(args, key)}")
    if args.images < args.batch_size:
        raise InputError(f"--images ({args.images}) must be at least --batch-size ({args.batch_size})")
    settings = {key: getattr(args, key) for key in ("images", "eval_images", "epochs", "batch_size", "lr", "seed")}
    out = args.out
    if _cached(out, settings):
        print(f"{out / CHECKPOINT}: already pretrained with these arguments (delete the folder to redo it)")
        return 0
    if (out / REPORT).exists() and not args.overwrite:
        raise InputError(f"{out}: holds a pretraining run made with other arguments; pass --overwrite to replace it")

    start = time.perf_counter()
    register_project_clip_configs()
    torch.manual_seed(args.seed)
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL)
    tokenizer = open_clip.get_tokenizer(MODEL)
    items = render_corpus(args.seed, range(args.images + args.eval_images), args.workers)
    train_items, eval_items = items[:args.images], items[args.images:]
    train_images, eval_images = _images(train_items, preprocess), _images(eval_items, preprocess)
    print(f"corpus: {len(train_items)} training and {len(eval_items)} held-out pairs "
          f"({time.perf_counter() - start:.0f} s)", flush=True)

    random_quality = evaluate(model, tokenizer, eval_images, eval_items)
    losses = train(model, train_images, tokenizer([item.caption for item in train_items]), args.epochs,
                   args.batch_size, args.lr, args.seed)
    quality = evaluate(model, tokenizer, eval_images, eval_items)

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    write_bytes_atomic(out / CHECKPOINT, buffer.getvalue())
    report = {"args": settings, "model": MODEL, "checkpoint": CHECKPOINT, "loss_per_epoch": losses,
              "held_out": {"pretrained": quality, "random_init": random_quality},
              "seconds": round(time.perf_counter() - start, 1)}
    write_text_atomic(out / REPORT, json.dumps(report, indent=2) + "\n")
    print(f"held-out object recognition (its caption with each of 4 object phrases): {100 * quality['object_top1']:.1f}% "
          f"(random init {100 * random_quality['object_top1']:.1f}%); caption retrieval R@1 "
          f"{100 * quality['retrieval_r1']:.1f}% (random {100 * random_quality['retrieval_r1']:.1f}%) "
          f"-> {out / CHECKPOINT} ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
