"""Benchmark: samples/s of ``answer_questions`` per feature kind and batch size, tiny random VLMs on the CPU.

    python -m bench.bench_llm_features [--samples 64] [--batches 1 8 32] [--max-new-tokens 8]

Builds the tests' tiny BLIP VQA and LLaVA (``tests.tiny_vlms``), writes ``--samples`` random strips and
times the answering loop (strip reading, generation, features, appending to the run folder; the model is
loaded before the clock starts) for each backend, feature kind and batch size. The tiny models are
overhead-bound: the figures show what batching saves per call, not a real VLM's speed (see the README for
GPU estimates).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from llm_features.answer_questions import QUESTION, answer_all
from llm_features.kinds import pooled_hidden, token_ids
from llm_features.prompt_run import PromptFolder
from llm_features.vlm import load_answerer
from tests.tiny_vlms import save_tiny_blip, save_tiny_llava, write_strips

BACKENDS = {"blip": ("blip", save_tiny_blip), "llava": ("image-text-to-text", save_tiny_llava)}


def featurizers(pad_id: int) -> dict[str, tuple]:
    """kind → (batch features, hidden layer needed)."""
    return {"answers": (None, None), "token-ids": (partial(token_ids, k=3, pad_id=pad_id), None),
            "hidden": (lambda generation: pooled_hidden(generation, "mean").astype("float16"), -1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-new-tokens", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = [f"S001C001P001R001A{i:03d}" for i in range(args.samples)]
        strips = write_strips(root / "data", names)
        print(f"{args.samples} strips, {args.max_new_tokens} new tokens at most, 1 thread; samples/s")
        print(f"{'model':6} {'kind':10} " + " ".join(f"{f'batch {b}':>9}" for b in args.batches))
        for model, (backend, save) in BACKENDS.items():
            answerer = load_answerer(str(save(root / model)), backend, "cpu", args.max_new_tokens,
                                     local_files_only=True)
            for kind, (featurize, layer) in featurizers(answerer.pad_id).items():
                rates = []
                for batch in args.batches:
                    folder = PromptFolder(root / "runs" / f"{model}-{kind}-{batch}", QUESTION, {})
                    start = time.perf_counter()
                    answer_all(answerer, strips["images"], names, QUESTION, folder.run, batch, featurize, layer,
                               desc=f"{model} {kind} {batch}")
                    rates.append(len(names) / (time.perf_counter() - start))
                print(f"{model:6} {kind:10} " + " ".join(f"{rate:9.1f}" for rate in rates))


if __name__ == "__main__":
    main()
