"""GPU self-check: speed, memory and correctness of the backbones, MMCL, the command line and data loading.

    python -m bench.bench_gpu [--gpu 0] [--tiny] [--device cpu] [--only CHECK ...] [--time-limit S]

On one GPU with synthetic data only, in under 9 minutes (each check's time limit, ``CHECKS``, adds up to less):
  * ctrgcn, tdgcn, hdgcn: a training step and an evaluation at NTU size (batch 64, T=64, M=2, V=25, K=120)
    in fp32, TF32, fp16 and bf16 autocast: samples/s and peak memory of ours and of its public-structure
    reference (``bench.reference_*``, same weights), timed alternately (``bench.timing``); fails if the two
    disagree in fp32 or mixed precision gives non-finite logits
  * gpu-vs-cpu: each backbone's evaluation logits and one training step's gradients on the GPU against the CPU
  * mmcl: a training step with FAM + FRM (cached RGB and text features) against the plain step
  * demo: ``main_mmcl.py --device 0`` trains the demo config for one epoch on freshly generated demo data
    (random feature stores), then ``--phase test`` on the GPU and on the CPU must give the same scores
  * loader: DataLoader samples/s at 0, 4, 8 and 16 workers over an NTU-size memory-mapped prepared split
Each check runs in its own process under a hard time limit: one over it is stopped and reported as timed out,
and the next one starts. The last lines are one summary line per check (name, status, figures, seconds used
of the limit); the exit status is 1 if any check did not pass. Without CUDA (or with ``--tiny``, or on
``--device cpu``) the same checks run on tiny shapes, one thread per process, in about a minute on an idle CPU.
See docs/gpu.md, "Running the GPU self-check".
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench import reference_ctrgcn, reference_hdgcn, reference_tdgcn
from bench.memory import high_water_rss, reset_high_water
from bench.timing import evaluate, interleaved, train_step
from model import ctrgcn, hdgcn, tdgcn

REPO = Path(__file__).resolve().parents[1]
#: The line a check's process ends with: this prefix, then its outcome as JSON.
RESULT = "bench_gpu result: "
#: Largest |difference| / largest |value| accepted between two float32 computations (TF32 off) of the same
#: logits (ours against the reference on one device; the GPU against the CPU; the demo's test scores) and of
#: the same gradients.
LOGIT_TOLERANCE, GRADIENT_TOLERANCE = 1e-4, 1e-3
#: Autocast dtype of each precision; TF32 is float32 with TF32 products and convolutions allowed.
PRECISIONS = {"fp32": None, "tf32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
BACKBONES = {
    "ctrgcn": (ctrgcn.Model, reference_ctrgcn.Model),
    "tdgcn": (tdgcn.Model, reference_tdgcn.Model),
    "hdgcn": (hdgcn.Model, reference_hdgcn.Model),
}


@dataclass(frozen=True)
class Shape:
    """How big each check runs: NTU size on a GPU, tiny on the CPU."""

    batch: int
    frames: int
    classes: int
    base_channel: int
    repeats: int
    probe: int  # samples compared between the device and the CPU
    demo_per_class: tuple[int, int, int]  # train, test, val samples per demo class
    demo_batch: int | None  # None: the demo config's batch sizes
    loader_rows: int
    loader_batch: int
    loader_window: int
    workers: tuple[int, ...]


FULL = Shape(batch=64, frames=64, classes=120, base_channel=64, repeats=5, probe=8, demo_per_class=(60, 20, 1),
             demo_batch=None, loader_rows=1024, loader_batch=64, loader_window=64, workers=(0, 4, 8, 16))
TINY = Shape(batch=4, frames=16, classes=10, base_channel=8, repeats=0, probe=2, demo_per_class=(3, 2, 1),
             demo_batch=12, loader_rows=48, loader_batch=8, loader_window=16, workers=(0, 2))


@dataclass
class Outcome:
    """What a check found: ``figure`` (one line) and whether it passed."""

    figure: str
    passed: bool = True


# ---------------------------------------------------------------- helpers shared by the checks (child side)

def set_precision(name: str) -> torch.dtype | None:
    """Set the TF32 flags for ``name`` (on for tf32 only) and return its autocast dtype. Only ever called in a
    check's own process, so the flags need no restoring."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = name == "tf32"
    return PRECISIONS[name]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synced(fn: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """``fn`` followed by waiting for the device, so that wall-clock time covers the work queued."""
    def run() -> None:
        fn()
        synchronize(device)
    return run


def peak_mb(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory in MB during one call of ``fn``: ``torch.cuda.max_memory_allocated`` on a GPU, the peak RSS
    of the process on the CPU (NaN where the peak cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        reset_high_water()
    except OSError:
        return math.nan
    fn()
    return high_water_rss() / 2**20


def measure(calls: dict[str, Callable[[], None]], shape: Shape, device: torch.device
            ) -> tuple[dict[str, float], dict[str, float]]:
    """Samples/s (a batch per call, the median of ``shape.repeats`` interleaved rounds) and peak MB of each of
    ``calls`` on ``device``. The call measured for memory is the warm-up; with no repeats (tiny shapes) its
    time is the one reported."""
    peaks, first = {}, {}
    for key, call in calls.items():
        started = time.perf_counter()
        peaks[key] = peak_mb(call, device)
        first[key] = [time.perf_counter() - started]
    times = interleaved(calls, 0, shape.repeats) if shape.repeats else first
    return {key: shape.batch / statistics.median(t) for key, t in times.items()}, peaks


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|, in float64 on the CPU."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def skeletons(shape: Shape, count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random (3, T, 25, 2) samples and labels."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(count, 3, shape.frames, 25, 2, generator=generator),
            torch.randint(0, shape.classes, (count,), generator=generator))


def build(model_class: type[nn.Module], shape: Shape, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return model_class(num_class=shape.classes, base_channel=shape.base_channel)


def describe(device: torch.device) -> str:
    """``device`` with the GPU's name."""
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def unsupported(precision: str, device: torch.device) -> str:
    """Why ``precision`` is left out on ``device`` (TF32 means nothing off CUDA), or ``""``."""
    if precision == "tf32" and device.type != "cuda":
        return "TF32 exists on CUDA only"
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        return "this GPU has no native bfloat16"
    return ""


# ---------------------------------------------------------------- the checks

def check_backbone(name: str, shape: Shape, device: torch.device) -> Outcome:
    """Ours against the public-structure reference: per precision, train / eval samples/s and peak memory."""
    ours_class, reference_class = BACKBONES[name]
    reference = build(reference_class, shape).to(device)
    ours = build(ours_class, shape).to(device)
    ours.load_state_dict(reference.state_dict(), strict=True)
    models = {"ours": ours, "reference": reference}
    optimizers = {key: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for key, m in models.items()}
    x, y = (t.to(device) for t in skeletons(shape, shape.batch))
    set_precision("fp32")
    disagreement = relative_difference(evaluate(ours, x), evaluate(reference, x))
    print(f"  {name}: batch {shape.batch}, T={shape.frames}, M=2, V=25, K={shape.classes} on {describe(device)}; "
          f"ours and the reference (same weights) agree to {disagreement:.1e} of the largest fp32 logit")
    print(f"  {'':5} {'':5} {'ours/s':>9} {'reference/s':>12} {'speed-up':>9} {'ours MB':>9} {'reference MB':>13}")
    rates: dict[str, dict[str, float]] = {}
    problems = [f"ours differs from the reference by {disagreement:.1e}"] if disagreement > LOGIT_TOLERANCE else []
    for precision in PRECISIONS:
        if why := unsupported(precision, device):
            print(f"  {precision:<5} left out: {why}")
            continue
        dtype = set_precision(precision)
        if dtype is not None and not torch.isfinite(evaluate(ours, x, dtype)).all():
            problems.append(f"non-finite {precision} logits")
        for mode in ("train", "eval"):
            calls = {key: synced(partial(train_step, m, optimizers[key], x, y, dtype) if mode == "train"
                                 else partial(evaluate, m, x, dtype), device) for key, m in models.items()}
            per_second, peaks = measure(calls, shape, device)
            print(f"  {precision:<5} {mode:<5} {per_second['ours']:9.1f} {per_second['reference']:12.1f} "
                  f"{per_second['ours'] / per_second['reference']:8.2f}x {peaks['ours']:9.0f} "
                  f"{peaks['reference']:13.0f}", flush=True)
            rates.setdefault(precision, {})[mode] = per_second["ours"]
            if (precision, mode) == ("fp32", "train"):
                speed_up, peak_train = per_second["ours"] / per_second["reference"], peaks["ours"]
    figure = ("train/eval samples/s " + " ".join(f"{p} {r['train']:.0f}/{r['eval']:.0f}" for p, r in rates.items())
              + f"; fp32 train {speed_up:.2f}x the reference, peak {peak_train:.0f} MB")
    return Outcome("; ".join([figure, *problems]), not problems)


def check_gpu_vs_cpu(shape: Shape, device: torch.device) -> Outcome:
    """Each backbone's float32 evaluation logits and one training step's gradients on ``device`` against the CPU."""
    set_precision("fp32")
    x, y = skeletons(shape, shape.probe, seed=1)
    worst = {"logits": 0.0, "gradients": 0.0}
    for name, (model_class, _) in BACKBONES.items():
        results = {}
        for where in dict.fromkeys([torch.device("cpu"), device]):
            model = build(model_class, shape).to(where)
            logits = evaluate(model, x.to(where))
            model.train()
            nn.functional.cross_entropy(model(x.to(where)), y.to(where)).backward()
            results[where.type] = logits, {key: p.grad for key, p in model.named_parameters() if p.grad is not None}
        (cpu_logits, cpu_grads), (logits, grads) = results["cpu"], results[device.type]
        largest = max(g.abs().max().item() for g in cpu_grads.values())
        differences = {"logits": relative_difference(logits, cpu_logits),
                       "gradients": max((grads[k].cpu() - g).abs().max().item() for k, g in cpu_grads.items())
                       / largest}
        print(f"  {name}: largest |{device} - cpu| / largest |cpu|: logits {differences['logits']:.1e}, "
              f"gradients {differences['gradients']:.1e}", flush=True)
        worst = {key: max(worst[key], differences[key]) for key in worst}
    passed = worst["logits"] <= LOGIT_TOLERANCE and worst["gradients"] <= GRADIENT_TOLERANCE
    same = " (the device is the CPU: compared with itself)" if device.type == "cpu" else ""
    return Outcome(f"largest relative difference: logits {worst['logits']:.1e} (tolerance {LOGIT_TOLERANCE:.0e}), "
                   f"gradients {worst['gradients']:.1e} (tolerance {GRADIENT_TOLERANCE:.0e}){same}", passed)


def check_mmcl(shape: Shape, device: torch.device) -> Outcome:
    """A training step of MMCL (FAM + FRM on cached 512-d RGB and text features) against the plain step."""
    from engine.objective import ClassificationObjective
    from model.mmcl import MMCLObjective

    set_precision("fp32")
    x, y = (t.to(device) for t in skeletons(shape, shape.batch))
    rgb, text = torch.randn(shape.batch, 512, device=device), torch.randn(shape.batch, 512, device=device)
    plain = ClassificationObjective(build(ctrgcn.Model, shape)).to(device)
    backbone = build(ctrgcn.Model, shape)
    mmcl = MMCLObjective(backbone, shape.classes, backbone.fc.in_features, rgb_dim=512, text_dim=512).to(device)
    losses: dict[str, list[float]] = {}

    def step(key: str, objective: nn.Module, optimizer: torch.optim.Optimizer, extras: tuple) -> None:
        objective.train()
        _, terms = objective(x, y, *objective.prepare_inputs(list(extras)))
        optimizer.zero_grad(set_to_none=True)
        total = sum(terms.values())
        total.backward()
        optimizer.step()
        losses[key] = [value.item() for value in terms.values()]

    objectives = {"plain": (plain, ()), "FAM + FRM": (mmcl, (rgb, text))}
    calls = {key: synced(partial(step, key, objective, torch.optim.SGD(objective.parameters(), lr=0.01, momentum=0.9),
                                 extras), device) for key, (objective, extras) in objectives.items()}
    per_second, peaks = measure(calls, shape, device)
    for key in calls:
        print(f"  {key:<10} {per_second[key]:9.1f} samples/s, peak {peaks[key]:.0f} MB, losses "
              + ", ".join(f"{v:.3f}" for v in losses[key]), flush=True)
    finite = all(math.isfinite(v) for values in losses.values() for v in values)
    ratio = per_second["plain"] / per_second["FAM + FRM"]
    return Outcome(f"CTR-GCN step, batch {shape.batch}: plain {per_second['plain']:.0f}/s, FAM + FRM "
                   f"{per_second['FAM + FRM']:.0f}/s ({ratio:.2f}x the plain step's time), peak "
                   f"{peaks['plain']:.0f} / {peaks['FAM + FRM']:.0f} MB" + ("" if finite else "; non-finite losses"),
                   finite)


def run_main_mmcl(what: str, argv: list[str]) -> None:
    """``python main_mmcl.py argv`` in a fresh process; a ``RuntimeError`` naming ``what`` and the command's
    last line if it fails."""
    completed = subprocess.run([sys.executable, str(REPO / "main_mmcl.py"), *argv], cwd=REPO, capture_output=True,
                               text=True, check=False)
    if completed.returncode:
        lines = (completed.stderr or completed.stdout).strip().splitlines() or ["(no output)"]
        raise RuntimeError(f"main_mmcl.py ({what}) exited with {completed.returncode}: {lines[-1]}")


def demo_inputs(root: Path, shape: Shape) -> dict[str, Path]:
    """Demo skeletons (no RGB strips) in ``root`` and random RGB and text feature stores of its training split."""
    from feeders.demo_data import generate_demo_dataset
    from feeders.feature_store import write_feature_store

    train, test, val = shape.demo_per_class
    generate_demo_dataset(root / "data", num_train_per_class=train, num_test_per_class=test, num_val_per_class=val,
                          with_rgb=False)
    names = (root / "data" / "train_names.txt").read_text(encoding="utf-8").splitlines()
    rng = np.random.default_rng(0)
    stores = {kind: root / kind for kind in ("rgb", "text")}
    for kind, store in stores.items():
        write_feature_store(store, rng.standard_normal((len(names), 64)).astype(np.float32), names, {"kind": kind})
    return {"data": root / "data", **stores}


def check_demo(shape: Shape, device: torch.device) -> Outcome:
    """The demo config (MMCL) through ``main_mmcl.py`` on ``device``: one epoch, then the test scores of its
    checkpoint on ``device`` and on the CPU."""
    spelling = "cpu" if device.type == "cpu" else str(device.index or 0)
    with tempfile.TemporaryDirectory(prefix="bench_gpu_demo_") as folder:
        root = Path(folder)
        started = time.perf_counter()
        inputs = demo_inputs(root, shape)
        made = time.perf_counter() - started
        data = f"data_path={inputs['data']}"
        common = ["--config", str(REPO / "config/demo/joint.yaml"), "--plots", "false", "--tf32", "false",
                  "--train-feeder-args", data, "--test-feeder-args", data,
                  "--mmcl", f"rgb_features={inputs['rgb']}", f"text_features={inputs['text']}"]
        if shape.demo_batch:
            common += ["--batch-size", str(shape.demo_batch), "--test-batch-size", str(shape.demo_batch)]
        started = time.perf_counter()
        run_main_mmcl("training", [*common, "--device", spelling, "--work-dir", str(root / "train"), "--num-epoch", "1",
                       "--warm-up-epoch", "0", "--eval-interval", "1", "--save-epoch", "1"])
        trained = time.perf_counter() - started
        log = (root / "train" / "log.txt").read_text(encoding="utf-8")
        scores = {}
        for where in dict.fromkeys([spelling, "cpu"]):
            work_dir = root / f"test_{where}"
            run_main_mmcl(f"test on {where}", [*common, "--phase", "test", "--device", where,
                                               "--weights", str(root / "train" / "last.pt"), "--work-dir", str(work_dir)])
            with np.load(work_dir / "test_last_score.npz") as npz:
                scores[where] = npz["scores"].astype(np.float64), npz["labels"]
    (device_scores, labels), (cpu_scores, _) = scores[spelling], scores["cpu"]
    difference = relative_difference(torch.from_numpy(device_scores), torch.from_numpy(cpu_scores))
    top1 = {where: 100 * float((s.argmax(1) == labels).mean()) for where, (s, _) in scores.items()}
    ran_there = f"running on {device}" in log or device.type == "cpu"
    print(f"  demo data made in {made:.1f} s; one training epoch (and its evaluation) in {trained:.1f} s; "
          f"test top-1 {', '.join(f'{w} {v:.1f} %' for w, v in top1.items())}", flush=True)
    passed = difference <= LOGIT_TOLERANCE and ran_there
    return Outcome(f"--phase test scores on {device} and cpu differ by {difference:.1e} of the largest "
                   f"(tolerance {LOGIT_TOLERANCE:.0e}); top-1 {top1[spelling]:.1f} %"
                   + ("" if ran_there else f"; the log does not say 'running on {device}'"), passed)


def loader_rate(loader: torch.utils.data.DataLoader, skip: int, device: torch.device) -> tuple[float, int]:
    """Samples/s of ``loader`` with each batch moved to ``device``, after its first ``skip`` batches (the wait
    for the workers to start); and the batches timed."""
    started, seen, timed_batches = None, 0, 0
    for index, (data, *_) in enumerate(loader):
        data.to(device, non_blocking=True)
        if index + 1 == skip:
            synchronize(device)
            started = time.perf_counter()
        elif started is not None:
            seen, timed_batches = seen + len(data), timed_batches + 1
    synchronize(device)
    return seen / (time.perf_counter() - started), timed_batches


def check_loader(shape: Shape, device: torch.device) -> Outcome:
    """Training DataLoader samples/s over a memory-mapped NTU-size split (``bench.bench_feeder``'s synthetic
    rows, T=300), per worker count as training caps it (at the CPU cores), batches moved to ``device``."""
    from bench.bench_feeder import synthetic_samples, write_synthetic_split
    from engine.data import WorkerInit, available_cpus, worker_count
    from engine.seeding import WorkerSeeder
    from feeders.ntu import NTUFeeder

    rates, problems = [], []
    with tempfile.TemporaryDirectory(prefix="bench_gpu_loader_") as folder:
        write_synthetic_split(Path(folder), shape.loader_rows,
                              synthetic_samples(min(128, shape.loader_rows), np.random.default_rng(0)))
        feeder = NTUFeeder(folder, "train", window_size=shape.loader_window, p_interval=(0.5, 1.0), random_rot=True)
        for asked in shape.workers:
            batches = max(16, 4 * asked)
            workers = worker_count(asked, batches)
            sampler = torch.utils.data.RandomSampler(feeder, replacement=True, num_samples=batches * shape.loader_batch,
                                                     generator=torch.Generator().manual_seed(0))
            loader = torch.utils.data.DataLoader(
                feeder, batch_size=shape.loader_batch, sampler=sampler, num_workers=workers,
                pin_memory=device.type == "cuda", worker_init_fn=WorkerInit(WorkerSeeder(1, 0, 0)) if workers else None)
            try:
                rate, timed_batches = loader_rate(loader, max(1, workers), device)
            except RuntimeError as error:  # a worker killed, e.g. by a small /dev/shm
                problems.append(f"{asked} workers: {' '.join(str(error).split())[:160]}")
                rate, timed_batches = math.nan, 0
            used = f" ({workers} used: capped at the {available_cpus()} CPU cores)" if workers < asked else ""
            print(f"  {asked:2d} workers{used}: {rate:8.0f} samples/s over {timed_batches} batches of "
                  f"{shape.loader_batch} (the first {max(1, workers)} left out)", flush=True)
            rates.append(rate)
    figure = (f"samples/s at {'/'.join(map(str, shape.workers))} workers: {'/'.join(f'{r:.0f}' for r in rates)} "
              f"(T=300 memmap rows, window {shape.loader_window}, {available_cpus()} CPU cores)")
    return Outcome("; ".join([figure, *problems]), not problems)


@dataclass(frozen=True)
class Check:
    """A check: its function of (shape, device) and its time limits in seconds, (full shapes, tiny shapes)."""

    run: Callable[[Shape, torch.device], Outcome]
    limits: tuple[float, float]


#: Every check in running order. The full limits add up to 520 s, so the whole run stays under 9 minutes; the
#: tiny ones are generous, for busy CPUs (tiny runs take seconds each).
CHECKS = {
    "ctrgcn": Check(partial(check_backbone, "ctrgcn"), (60, 60)),
    "tdgcn": Check(partial(check_backbone, "tdgcn"), (60, 60)),
    "hdgcn": Check(partial(check_backbone, "hdgcn"), (100, 60)),
    "gpu-vs-cpu": Check(check_gpu_vs_cpu, (60, 60)),
    "mmcl": Check(check_mmcl, (45, 60)),
    "demo": Check(check_demo, (120, 120)),
    "loader": Check(check_loader, (75, 60)),
}


# ---------------------------------------------------------------- running the checks (parent side)

@dataclass
class Report:
    name: str
    status: str  # pass, FAIL, ERROR or TIMEOUT
    figure: str
    seconds: float
    limit: float

    def line(self) -> str:
        return f"{self.name:<11} {self.status:<7} {self.figure} [{self.seconds:.0f} s of {self.limit:.0f} s]"


def run_check(name: str, device: str, tiny: bool, limit: float) -> Report:
    """Run check ``name`` in a fresh process, echoing its lines; stop it (and its children) after ``limit`` s."""
    command = [sys.executable, "-m", "bench.bench_gpu", "--run-check", name, "--device", device,
               *(["--tiny"] if tiny else [])]
    # tiny runs are a quick look, often on a shared CPU: one thread each, where several would wait on each other
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} if tiny else {})}
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   start_new_session=True)
        lines: list[str] = []
        reader = threading.Thread(target=_echo, args=(process.stdout, lines), daemon=True)
        reader.start()
        try:
            process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(timeout=5)
        seconds = time.perf_counter() - started
        errors.seek(0)
        error_lines = errors.read().strip().splitlines()
    outcome = next((json.loads(line[len(RESULT):]) for line in lines if line.startswith(RESULT)), None)
    if outcome is not None:
        return Report(name, "pass" if outcome["passed"] else "FAIL", outcome["figure"], seconds, limit)
    if process.returncode == -signal.SIGKILL and seconds >= limit:
        return Report(name, "TIMEOUT", f"stopped after its {limit:.0f} s limit", seconds, limit)
    if process.returncode < 0:
        return Report(name, "ERROR", f"killed by {signal.Signals(-process.returncode).name}", seconds, limit)
    last = error_lines[-1] if error_lines else f"exit status {process.returncode}"
    return Report(name, "ERROR", last[:200], seconds, limit)


def _echo(stream, lines: list[str]) -> None:
    """Print a check's output lines as they come (all but its result line) and keep them."""
    for line in stream:
        line = line.rstrip("\n")
        lines.append(line)
        if not line.startswith(RESULT):
            print(line, flush=True)


def run_one(name: str, tiny: bool, device: str) -> int:
    """The child side: run check ``name`` and print its outcome as the last line."""
    outcome = CHECKS[name].run(TINY if tiny else FULL, torch.device(device))
    print(RESULT + json.dumps({"figure": outcome.figure, "passed": outcome.passed}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", type=int, default=0, help="the CUDA device to check (default: 0)")
    parser.add_argument("--device", help="run the checks on this torch device instead, e.g. cpu (default: cuda:GPU "
                                         "when CUDA is available, else cpu)")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny shapes, for a quick look (default: on without CUDA or on the CPU, else off)")
    parser.add_argument("--only", nargs="+", choices=list(CHECKS), metavar="CHECK",
                        help=f"run these checks only, of {', '.join(CHECKS)} (default: all)")
    parser.add_argument("--time-limit", type=float,
                        help="seconds each check may take (default: each check's own limit, docs/gpu.md)")
    parser.add_argument("--run-check", choices=list(CHECKS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = args.device or (f"cuda:{args.gpu}" if torch.cuda.is_available() else "cpu")
    tiny = args.tiny or not device.startswith("cuda")
    if args.run_check:
        return run_one(args.run_check, tiny, device)
    print(f"GPU self-check on {device}, torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}, "
          f"{'tiny' if tiny else 'NTU-size'} shapes", flush=True)
    reports = []
    for name in args.only or CHECKS:
        limit = args.time_limit or CHECKS[name].limits[tiny]
        print(f"== {name} (limit {limit:.0f} s)", flush=True)
        reports.append(run_check(name, device, tiny, limit))
    print("\nsummary: check, status, figures [time used of its limit]")
    for report in reports:
        print(report.line())
    return 0 if all(report.status == "pass" for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
