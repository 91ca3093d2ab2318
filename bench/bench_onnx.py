"""Latency of the skeleton-only model: PyTorch eager vs onnxruntime on the CPU, batch 1 and 64.

    python -m bench.bench_onnx [--model ctrgcn] [--classes 120] [--frames 64] [--threads 2]

Exports the full-width backbone (random weights: latency does not depend on them) with ``tools.export_onnx``
and times one forward pass per batch size, median of several after a warm-up, both engines limited to
``--threads`` threads. Needs ``requirements-deploy.txt``. On a shared machine the figures are noisy.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from model.registry import build_backbone
from tools.export_onnx import INPUT, export_onnx


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``function()`` over ``repeats`` calls after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ctrgcn", help="backbone (default: %(default)s)")
    parser.add_argument("--classes", type=int, default=120, help="classes (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=64, help="frames per sample, T (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="threads of each engine (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = build_backbone(args.model, {"num_class": args.classes, "num_point": 25, "num_person": 2,
                                        "graph": "graph.ntu_rgb_d.Graph"}).eval()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(model, torch.zeros(1, 3, args.frames, 25, 2), path)
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    print(f"{args.model}, {args.classes} classes, T={args.frames}, {args.threads} threads (median; noisy if shared)")
    for batch, repeats in ((1, 20), (64, 3)):
        sample = torch.randn(batch, 3, args.frames, 25, 2)
        with torch.inference_mode():
            eager = median_seconds(lambda x=sample: model(x), repeats)
        feed = {INPUT: sample.numpy().astype(np.float32)}
        runtime = median_seconds(lambda f=feed: session.run(None, f), repeats)
        print(f"batch {batch:2d}: PyTorch eager {1000 * eager:8.1f} ms, onnxruntime {1000 * runtime:8.1f} ms "
              f"({eager / runtime:.2f}x)")


if __name__ == "__main__":
    main()
