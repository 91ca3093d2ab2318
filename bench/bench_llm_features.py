"""Benchmark: samples/s of ``answer_questions`` per feature kind and batch size, tiny random VLMs on the CPU.

    python -m bench.bench_llm_features [--samples 64] [--batches 1 8 32] [--max-new-tokens 8]
    python -m bench.bench_llm_features --memory [--repeats 3]

Builds the tests' tiny BLIP VQA and LLaVA (``tests.tiny_vlms``), writes ``--samples`` random strips and
times the answering loop (strip reading, generation, features, appending to the run folder; the model is
loaded before the clock starts) for each backend, feature kind and batch size. The tiny models are
overhead-bound: the figures show what batching saves per call, not a real VLM's speed (see docs/features.md for
GPU estimates).

``--memory`` compares, for ``hidden`` features, the peak RSS of one batch's ``generate`` (32 strips, 20 new
tokens) with the layer hook (``llm_features.layer_tap``) and with ``output_hidden_states``
(``bench.reference_hidden_states``), on a small random LLaVA (8 layers of width 256, 256 image tokens), each
measured in a fresh process (Linux: ``/proc`` peak RSS, reset after a warm-up batch; glibc's
``MALLOC_MMAP_THRESHOLD_`` fixed at 128 KB so that freed tensors leave the RSS), and the bytes of hidden states
each way holds when ``generate`` returns.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from bench.memory import current_rss, high_water_rss, reset_high_water
from bench.reference_hidden_states import generate_all_states
from llm_features.answer_questions import QUESTION, answer_all, open_strip
from llm_features.kinds import pooled_hidden, token_ids
from llm_features.prompt_run import PromptFolder
from llm_features.vlm import load_answerer
from tests.tiny_vlms import save_tiny_blip, save_tiny_llava, write_strips

BACKENDS = {"blip": ("blip", save_tiny_blip), "llava": ("image-text-to-text", save_tiny_llava)}
MEMORY_MODEL = {"layers": 8, "width": 256, "image_size": 128}
MEMORY_BATCH, MEMORY_NEW_TOKENS = 32, 20


def featurizers(pad_id: int) -> dict[str, tuple]:
    """kind → (batch features, hidden layer needed)."""
    return {"answers": (None, None), "token-ids": (partial(token_ids, k=3, pad_id=pad_id), None),
            "hidden": (lambda generation: pooled_hidden(generation, "mean").astype("float16"), -1)}


def _hidden_memory(model: str, images: str, names: list[str], way: str) -> tuple[int, int, int]:
    """In a fresh process: peak RSS growth and bytes of hidden states held by one batch's ``generate`` the
    ``way`` asked (``hook`` or ``output_hidden_states``), and the prompt length in tokens."""
    torch.set_num_threads(1)
    answerer = load_answerer(model, "image-text-to-text", "cpu", MEMORY_NEW_TOKENS, local_files_only=True)
    strips = [open_strip(Path(images), name) for name in names]

    def held(batch: list) -> int:
        if way == "hook":
            states = answerer.generate(batch, [QUESTION] * len(batch), layer=-1).states
            return states.numel() * states.element_size()
        steps, _ = generate_all_states(answerer, batch, [QUESTION] * len(batch))
        return sum(state.numel() * state.element_size() for step in steps for state in step)

    held(strips[:2])  # warm-up: lazy initialisation is not the batch's
    reset_high_water()
    before = current_rss()
    kept = held(strips)
    prompt = answerer.inputs(strips[:1], [QUESTION])["input_ids"].shape[1]
    return high_water_rss() - before, kept, prompt


def memory(root: Path, repeats: int) -> None:
    """Print the peak RSS growth (median and range over ``repeats`` fresh processes) of the two ways."""
    names = [f"S001C001P001R001A{i:03d}" for i in range(MEMORY_BATCH)]
    strips = write_strips(root / "memory", names)
    model = str(save_tiny_llava(root / "llava-memory", **MEMORY_MODEL))
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(128 * 1024))  # read by the children's glibc at start
    context = multiprocessing.get_context("spawn")
    print(f"LLaVA-style random model {MEMORY_MODEL}, batch {MEMORY_BATCH}, {MEMORY_NEW_TOKENS} new tokens at most, "
          f"1 thread, {repeats} fresh processes each")
    for way in ("output_hidden_states", "hook"):
        runs = []
        for _ in range(repeats):
            with context.Pool(1) as pool:
                runs.append(pool.apply(_hidden_memory, (model, str(strips["images"]), names, way)))
        peaks = sorted(run[0] / 2**20 for run in runs)
        print(f"{way:21} prompt {runs[0][2]} tokens: hidden states held {runs[0][1] / 2**20:7.2f} MB, "
              f"peak RSS +{statistics.median(peaks):.1f} MB [{peaks[0]:.1f}-{peaks[-1]:.1f}]")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=64, help="random strips answered (default: %(default)s)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32],
                        help="batch sizes to time (default: 1 8 32)")
    parser.add_argument("--max-new-tokens", type=int, default=8,
                        help="longest answer, in generated tokens (default: %(default)s)")
    parser.add_argument("--memory", action="store_true",
                        help="compare the peak memory of the hidden-state ways instead (default: time the loop)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="--memory: fresh processes per way (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.memory:
        with tempfile.TemporaryDirectory() as tmp:
            memory(Path(tmp), args.repeats)
        return
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
