"""Benchmark: our HD-GCN against the straightforward reference, CPU training step and evaluation throughput.

Run ``python -m bench.bench_hdgcn [--quick] [--repeats R]``. Both models hold the same weights (ours loads the
reference's); they are timed alternately in one run (A, B, B, A, ...: the order flips every round) after a
warm-up. Each case reports both models' median time per call and the median of the per-round speed-ups
(reference time / ours, same round) with their min–max spread. The two models' logits on the same batch are
compared first: the speed-up is only printed for identical outputs.
"""
from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from bench.bench_backbone import timed, train_step
from bench.reference_hdgcn import Model as ReferenceModel
from model.complexity import count_parameters, macs_per_sample
from model.hdgcn import Model


def evaluate(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Evaluation-mode logits without autograd."""
    model.eval()
    with torch.no_grad():
        return model(x)


def interleaved(runs: dict[str, Callable[[], object]], warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per call of every run, alternating the runs (order reversed every other repeat)."""
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            times[name].append(timed(runs[name]))
    return times


def case_line(case: str, batch: int, times: dict[str, list[float]]) -> str:
    """Median ms per call (and samples/s) of both models; the median [min–max] of the per-round speed-ups."""
    cells = [f"{1e3 * statistics.median(t):9.1f} ms {batch / statistics.median(t):7.2f}/s" for t in times.values()]
    ratios = sorted(r / o for o, r in zip(times["ours"], times["reference"]))
    spread = f"{statistics.median(ratios):.2f}x [{ratios[0]:.2f}–{ratios[-1]:.2f}]"
    return f"{case:<17} {cells[0]:>22} {cells[1]:>22} {spread:>18}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two timed rounds")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per case")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats

    torch.manual_seed(0)
    reference = ReferenceModel(num_class=60)
    ours = Model(num_class=60)
    ours.load_state_dict(reference.state_dict(), strict=True)
    models = {"ours": ours, "reference": reference}
    inputs = {batch: torch.randn(batch, 3, args.frames, 25, 2) for batch in (1, 16, 64)}
    expected = evaluate(reference, inputs[16])
    difference = ((evaluate(ours, inputs[16]) - expected).abs().max() / expected.abs().max()).item()
    if difference > 1e-5:
        raise SystemExit(f"outputs differ (max |logit difference| {difference:.1e} of the largest logit): no timing")

    y = torch.randint(0, 60, (16,))
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for name, m in models.items()}

    def step(name: str) -> None:
        models[name].train()
        train_step(models[name], optimizers[name], inputs[16], y)

    print(f"HD-GCN (CoM 21), CPU, {torch.get_num_threads()} threads, T={args.frames}, V=25, M=2, K=60; "
          f"{repeats} interleaved rounds per case after a warm-up: median time per call, and the median "
          f"[min–max] of the per-round speed-ups; "
          f"same weights, eval logits agree to {difference:.1e} of the largest")
    for name, model in models.items():
        print(f"{name:>9}: {count_parameters(model):,} parameters, "
              f"{macs_per_sample(model, inputs[1]) / 1e9:.3f} GMAC per sample")
    print(f"{'case':<17} {'ours':>22} {'reference':>22} {'speed-up':>18}")
    print(case_line("train step, b=16", 16, interleaved({n: partial(step, n) for n in models}, 1, repeats)), flush=True)
    for batch in (1, 16, 64):  # the evaluation path is warmed up once, at batch 1
        runs = {name: partial(evaluate, model, inputs[batch]) for name, model in models.items()}
        print(case_line(f"eval, b={batch}", batch, interleaved(runs, int(batch == 1), repeats)), flush=True)


if __name__ == "__main__":
    main()
