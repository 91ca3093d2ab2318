"""Benchmark: our CTR-GCN against the straightforward reference, CPU training step and evaluation throughput.

Run ``python -m bench.bench_backbone [--quick]``. Both models have the same parameters (ours loads the
reference's weights); they are timed alternately in one run, after warm-up, and the median is reported.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from bench.reference_ctrgcn import Model as ReferenceModel
from model.complexity import count_parameters, macs_per_sample
from model.ctrgcn import Model


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    """One SGD step on cross-entropy: forward, backward, update."""
    optimizer.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def timed(fn: Callable[[], None]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one warm-up and two timed repeats")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per model and mode")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warmup, repeats = (1, 2) if args.quick else (2, args.repeats)

    torch.manual_seed(0)
    reference = ReferenceModel(num_class=60)
    ours = Model(num_class=60)
    ours.load_state_dict(reference.state_dict(), strict=True)
    models = {"ours": ours, "reference": reference}
    x = torch.randn(args.batch, 3, args.frames, 25, 2)
    y = torch.randint(0, 60, (args.batch,))
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for name, m in models.items()}

    def step(name: str) -> None:
        models[name].train()
        train_step(models[name], optimizers[name], x, y)

    def evaluate(name: str) -> None:
        models[name].eval()
        with torch.no_grad():
            models[name](x)

    times: dict[tuple[str, str], list[float]] = {}
    for mode, run in (("train step", step), ("eval", evaluate)):
        for _ in range(warmup):
            for name in models:
                run(name)
        for _ in range(repeats):
            for name in models:
                times.setdefault((mode, name), []).append(timed(partial(run, name)))

    sample = x[:1]
    print(f"CTR-GCN, CPU, {torch.get_num_threads()} threads, batch {args.batch}, T={args.frames}, V=25, M=2, K=60, "
          f"median of {repeats} after {warmup} warm-up")
    for name, model in models.items():
        params = count_parameters(model)
        print(f"{name:>9}: {params:,} parameters, {macs_per_sample(model, sample) / 1e9:.3f} GMAC per sample")
    print(f"{'mode':<11} {'ours (samples/s)':>17} {'reference (samples/s)':>22} {'speed-up':>9}")
    for mode in ("train step", "eval"):
        ours_rate = args.batch / statistics.median(times[(mode, "ours")])
        ref_rate = args.batch / statistics.median(times[(mode, "reference")])
        print(f"{mode:<11} {ours_rate:>17.2f} {ref_rate:>22.2f} {ours_rate / ref_rate:>8.2f}x")


if __name__ == "__main__":
    main()
