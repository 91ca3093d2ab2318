"""Side-by-side timing of a backbone against its public-structure reference, shared by the backbone benches.

Both models hold the same weights and get the same input. Each case (a training step or an evaluation at some
batch) is warmed up once, then timed in interleaved rounds, ours then the reference's (the order flips every
other round), so that a slow spell of the machine hits both. A row gives the median time of each and the median
of the per-round speed-ups (reference time / ours) with their min–max spread.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn

from model.complexity import count_parameters, macs_per_sample

#: The autocast dtypes a bench can add rows for.
DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               dtype: torch.dtype | None = None) -> None:
    """One SGD step on cross-entropy (forward under autocast on ``x``'s device to ``dtype`` if given), backward,
    update."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        logits = model(x)
    nn.functional.cross_entropy(logits.float(), y).backward()
    optimizer.step()


def evaluate(model: nn.Module, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Evaluation-mode logits without autograd (under autocast on ``x``'s device to ``dtype`` if given)."""
    model.eval()
    with torch.no_grad(), torch.autocast(x.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        return model(x)


def case_runs(models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], mode: str,
              x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None) -> dict[str, Callable[[], object]]:
    """Per model, one call of the case: an SGD step on (x, y) when ``mode`` is ``train``, else an evaluation."""
    if mode == "train":
        return {name: partial(train_step, model, optimizers[name], x, y, dtype) for name, model in models.items()}
    return {name: partial(evaluate, model, x, dtype) for name, model in models.items()}


def interleaved(runs: dict[str, Callable[[], object]], warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per call of every run in each of ``repeats`` rounds, alternating the runs (order reversed every
    other round), after ``warmup`` untimed rounds."""
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            times[name].append(timed(runs[name]))
    return times


def operator_times(fn: Callable[[], object]) -> dict[str, float]:
    """Self CPU milliseconds per operator over one call of ``fn`` (``torch.profiler``)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        fn()
    return {event.key: event.self_cpu_time_total / 1e3 for event in profile.key_averages()}


def breakdown_rows(ours: dict[str, float], reference: dict[str, float], top: int = 10) -> list[str]:
    """The ``top`` operators taking the most time in either model, with the ms of each and each one's share."""
    totals = {"ours": sum(ours.values()), "reference": sum(reference.values())}
    names = sorted(set(ours) | set(reference), key=lambda name: -max(ours.get(name, 0.0), reference.get(name, 0.0)))
    rows = []
    for name in names[:top]:
        cells = [f"{times.get(name, 0.0):8.1f} ms {100 * times.get(name, 0.0) / totals[who]:4.0f}%"
                 for who, times in (("ours", ours), ("reference", reference))]
        rows.append(f"    {name:<40} {cells[0]:>18} {cells[1]:>18}")
    return rows + [f"    {'all operators':<40} {totals['ours']:8.1f} ms {'':5} {totals['reference']:8.1f} ms"]


def report_case(label: str, batch: int, runs: dict[str, Callable[[], object]], args: argparse.Namespace,
                note: str = "") -> None:
    """Time ``runs`` (``ours`` and ``reference``) in ``args.repeats`` interleaved rounds after a warm-up, print
    the row (followed by ``note``) and, with ``args.profile``, each one's heaviest operators."""
    print(comparison_row(label, batch, interleaved(runs, 1, args.repeats)) + note, flush=True)
    if args.profile:
        print("\n".join(breakdown_rows(operator_times(runs["ours"]), operator_times(runs["reference"]))))


def comparison_row(label: str, batch: int, times: dict[str, list[float]]) -> str:
    """Median ms per call (and samples/s) of ours and the reference, the median per-round speed-up [min–max]."""
    ratios = sorted(ref / ours for ours, ref in zip(times["ours"], times["reference"]))
    cells = [f"{1e3 * statistics.median(t):9.1f} ms ({batch / statistics.median(t):6.1f}/s)"
             for t in (times["ours"], times["reference"])]
    return f"{label:<22} {cells[0]:>24} {cells[1]:>24} {statistics.median(ratios):6.2f}x [{ratios[0]:.2f}–{ratios[-1]:.2f}]"


def bench_parser(description: str) -> argparse.ArgumentParser:
    """The options every backbone bench takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=7,
                        help="interleaved timed rounds per case (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=64, help="frames per sample, T (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads, 0 to leave torch's default (default: %(default)s)")
    parser.add_argument("--dtype", nargs="+", choices=list(DTYPES), default=["fp32"],
                        help="rows for each: fp32, and/or bf16 CPU autocast, both models alike (default: fp32)")
    parser.add_argument("--profile", action="store_true", help="after each row, its heaviest operators in each model")
    return parser


def compare(title: str, ours: nn.Module, reference: nn.Module, cases: Sequence[tuple[str, int]],
            args: argparse.Namespace, num_class: int = 60) -> None:
    """Time ``ours`` against ``reference`` (same weights) on each (mode, batch) of ``cases``, mode ``train`` (an
    SGD step) or ``eval``, for every ``args.dtype``; print a row per case. Refuses models whose logits differ."""
    if args.threads:
        torch.set_num_threads(args.threads)
    ours.load_state_dict(reference.state_dict(), strict=True)
    models = {"ours": ours, "reference": reference}
    torch.manual_seed(0)
    inputs = {batch: torch.randn(batch, 3, args.frames, 25, 2) for _, batch in cases}
    probe = inputs[max(inputs)][:4]
    expected = evaluate(reference, probe)
    difference = ((evaluate(ours, probe) - expected).abs().max() / expected.abs().max()).item()
    if difference > 1e-5:
        raise SystemExit(f"outputs differ (max |logit difference| {difference:.1e} of the largest logit): no timing")
    labels = torch.randint(0, num_class, (max(inputs),))
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for name, m in models.items()}

    print(f"{title}, CPU, {torch.get_num_threads()} threads, T={args.frames}, V=25, M=2, K={num_class}; "
          f"{args.repeats} interleaved rounds after a warm-up; same weights, eval logits agree to {difference:.1e} "
          f"of the largest")
    for name, model in models.items():
        print(f"{name:>9}: {count_parameters(model):,} parameters, "
              f"{macs_per_sample(model, inputs[min(inputs)][:1]) / 1e9:.3f} GMAC per sample")
    print(f"{'case':<22} {'ours (median)':>24} {'reference (median)':>24} {'speed-up: median [min–max] per round'}")
    for dtype_name in args.dtype:
        dtype = DTYPES[dtype_name]
        for mode, batch in cases:
            runs = case_runs(models, optimizers, mode, inputs[batch], labels[:batch], dtype)
            report_case(f"{mode}, b={batch}, {dtype_name}", batch, runs, args)
