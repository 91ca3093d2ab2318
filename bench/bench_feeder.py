"""Feeder benchmarks: NTU training-transform throughput against a CTR-GCN-style torch pipeline, and the
memory a DataLoader over a memory-mapped prepared file costs as the file grows.

    python -m bench.bench_feeder [--quick]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from feeders.ntu import ROTATION_THETA, NTUFeeder
from feeders.prepared import split_paths, write_meta

FRAMES, JOINTS, PERSONS = 300, 25, 2
SAMPLE_BYTES = 3 * FRAMES * JOINTS * PERSONS * 4
P_INTERVAL, WINDOW = (0.5, 1.0), 64


def synthetic_samples(count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 3, 300, 25, 2) float32 NTU-like samples: a pose per person drifting smoothly over 100-300 valid
    frames, the second person present in half of them, zeros after the end."""
    pose = rng.normal(0.0, 0.3, size=(count, 3, 1, JOINTS, PERSONS))
    pose[:, 0, :, :, 1] += 1.0
    drift = np.cumsum(rng.normal(0.0, 0.01, size=(count, 3, FRAMES, JOINTS, PERSONS)), axis=2)
    samples = (pose + drift).astype(np.float32)
    valid = rng.integers(100, FRAMES + 1, size=count)
    samples.transpose(0, 2, 1, 3, 4)[np.arange(FRAMES)[None, :] >= valid[:, None]] = 0.0
    samples[rng.random(count) < 0.5, :, :, :, 1] = 0.0
    return samples


def write_synthetic_split(root: Path, count: int, bank: np.ndarray) -> None:
    """A prepared ``train`` split of ``count`` rows cycling through ``bank``, written in chunks via open_memmap."""
    paths = split_paths(root, "train")
    root.mkdir(parents=True, exist_ok=True)
    data = np.lib.format.open_memmap(paths["data"], mode="w+", dtype=np.float32, shape=(count, *bank.shape[1:]))
    for start in range(0, count, len(bank)):
        stop = min(start + len(bank), count)
        data[start:stop] = bank[: stop - start]
    data.flush()
    del data
    np.save(paths["label"], np.arange(count, dtype=np.int64) % 60)
    paths["names"].write_text("".join(f"train_{i}\n" for i in range(count)), encoding="utf-8")
    write_meta(root, "synthetic", 60, "ntu_rgb_d", {"train": count})


class ReferencePipeline:
    """The same training transform done the CTR-GCN way: copy the sample, crop, resize with torch
    ``F.interpolate`` on a (C·V·M, T) plane, rotate with per-frame torch matrices built on every call."""

    def __init__(self, data: np.ndarray, seed: int) -> None:
        self.data, self.rng = data, np.random.default_rng(seed)
        torch.manual_seed(seed)

    def __call__(self, index: int) -> np.ndarray:
        sample = np.array(self.data[index])
        channels, _, joints, persons = sample.shape
        valid = int(np.sum(sample.sum(0).sum(-1).sum(-1) != 0))
        p = self.rng.random() * (P_INTERVAL[1] - P_INTERVAL[0]) + P_INTERVAL[0]
        length = min(max(int(np.floor(valid * p)), 64), valid)
        start = self.rng.integers(0, valid - length + 1)
        crop = torch.tensor(sample[:, start : start + length], dtype=torch.float)
        plane = crop.permute(0, 2, 3, 1).contiguous().view(1, 1, channels * joints * persons, length)
        resized = F.interpolate(plane, size=(channels * joints * persons, WINDOW), mode="bilinear", align_corners=False)
        x = resized.view(channels, joints, persons, WINDOW).permute(3, 0, 1, 2).reshape(WINDOW, channels, -1)
        rotation = self.rotations(torch.zeros(3).uniform_(-ROTATION_THETA, ROTATION_THETA).expand(WINDOW, 3))
        rotated = torch.matmul(rotation, x).view(WINDOW, channels, joints, persons)
        return rotated.permute(1, 0, 2, 3).contiguous().numpy()

    @staticmethod
    def rotations(angles: torch.Tensor) -> torch.Tensor:
        """(T, 3, 3) ``Rz @ Ry @ Rx`` for per-frame angles (T, 3)."""
        cos, sin = angles.cos(), angles.sin()
        zero, one = torch.zeros(len(angles)), torch.ones(len(angles))

        def matrix(*rows: tuple[torch.Tensor, ...]) -> torch.Tensor:
            return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=1)

        rx = matrix((one, zero, zero), (zero, cos[:, 0], sin[:, 0]), (zero, -sin[:, 0], cos[:, 0]))
        ry = matrix((cos[:, 1], zero, -sin[:, 1]), (zero, one, zero), (sin[:, 1], zero, cos[:, 1]))
        rz = matrix((cos[:, 2], sin[:, 2], zero), (-sin[:, 2], cos[:, 2], zero), (zero, zero, one))
        return rz @ ry @ rx


def samples_per_second(transform: Callable[[int], object], indices: np.ndarray) -> float:
    """Rate of ``transform`` over ``indices``, one call per index."""
    start = time.perf_counter()
    for index in indices:
        transform(int(index))
    return len(indices) / (time.perf_counter() - start)


def throughput(root: Path, draws: int) -> list[tuple[str, float]]:
    """Samples/s of our feeder and of the reference pipeline on the same memory-mapped split, same indices."""
    ours = NTUFeeder(str(root), "train", window_size=WINDOW, p_interval=P_INTERVAL, random_rot=True, seed=1)
    reference = ReferencePipeline(np.load(split_paths(root, "train")["data"], mmap_mode="r"), seed=1)
    indices = np.random.default_rng(0).integers(0, len(ours), size=draws)
    for transform in (ours.__getitem__, reference):  # warm the page cache and caches
        samples_per_second(transform, indices[: min(200, draws)])
    return [
        ("mmcl NTUFeeder (numpy)", samples_per_second(ours.__getitem__, indices)),
        ("reference (torch interpolate + rotation)", samples_per_second(reference, indices)),
    ]


def proc_status() -> dict[str, float]:
    """VmHWM, VmRSS, RssAnon and RssFile of this process in MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def memory_child(root: str, samples: int, use_mmap: bool) -> None:
    """Run in a fresh process: iterate a DataLoader over random samples, print memory figures as JSON."""
    torch.set_num_threads(1)
    feeder = NTUFeeder(root, "train", window_size=WINDOW, p_interval=P_INTERVAL, random_rot=True, use_mmap=use_mmap)
    opened = proc_status()
    sampler = torch.utils.data.RandomSampler(feeder, replacement=True, num_samples=samples)
    peak_anon, seen = opened["RssAnon"], set()
    for _, _, indices in torch.utils.data.DataLoader(feeder, batch_size=64, sampler=sampler, num_workers=0):
        peak_anon = max(peak_anon, proc_status()["RssAnon"])
        seen.update(indices.tolist())
    final = proc_status()
    figures = {
        "distinct": len(seen) * SAMPLE_BYTES / 2**20,
        "anon_open": opened["RssAnon"],
        "anon_peak": peak_anon,
        "rss_peak": final["VmHWM"],
        "mapped_read": final["RssFile"] - opened["RssFile"],
    }
    print(json.dumps(figures))


def drop_page_cache(path: Path) -> None:
    """Write ``path`` back and evict it from the page cache, as for a dataset prepared earlier.

    Freshly written data sits in large page-cache folios that a fault maps whole (Linux 6.x), which would
    make a mapping look far bigger than the samples read.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def memory(work: Path, sizes_mb: list[int], samples: int) -> list[dict]:
    """Per case, a fresh process's memory while reading ``samples`` random samples of a file of each size."""
    bank = synthetic_samples(64, np.random.default_rng(0))
    repo = Path(__file__).resolve().parents[1]
    cases = [(size, True) for size in sizes_mb] + [(sizes_mb[0], False)]
    rows = []
    for size, use_mmap in cases:
        root = work / f"mem_{size}"
        if not root.exists():
            write_synthetic_split(root, math.ceil(size * 2**20 / SAMPLE_BYTES), bank)
            drop_page_cache(split_paths(root, "train")["data"])
        command = [sys.executable, "-m", "bench.bench_feeder", "--memory-child", str(root), "--samples", str(samples)]
        output = subprocess.run(command + ([] if use_mmap else ["--no-mmap"]), cwd=repo, check=True,
                                capture_output=True, text=True).stdout
        file_mb = split_paths(root, "train")["data"].stat().st_size / 2**20
        rows.append({"file_mb": file_mb, "mmap": use_mmap, **json.loads(output.splitlines()[-1])})
    return rows


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Right-aligned columns under a header rule."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in [header, ["-" * width for width in widths], *rows]:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="very short run with small files (default: the full run)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, default=3000, help=argparse.SUPPRESS)
    parser.add_argument("--no-mmap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.samples, not args.no_mmap)
        return
    torch.set_num_threads(1)
    rows, draws, sizes, samples = (128, 500, [20, 200], 500) if args.quick else (512, 4000, [200, 2048], 3000)
    work = Path(tempfile.mkdtemp(prefix="bench_feeder_"))
    try:
        root = work / "throughput"
        write_synthetic_split(root, rows, synthetic_samples(rows, np.random.default_rng(1)))
        results = throughput(root, draws)
        print(f"(a) NTU joint training transform: T=300 (100-300 valid), M=2, p_interval {list(P_INTERVAL)}, "
              f"window {WINDOW}, random_rot; main process, 1 torch thread, {draws} draws over {rows} samples")
        print_table(
            ["pipeline", "samples/s", "us/sample", "speed-up"],
            [[name, f"{rate:.0f}", f"{1e6 / rate:.0f}", f"{rate / results[1][1]:.2f}x"] for name, rate in results],
        )
        print()
        mem_rows = memory(work, sizes, samples)
        print(f"(b) memory of a fresh process reading {samples} random samples through a DataLoader (batch 64)")
        columns = ("distinct", "anon_open", "anon_peak", "rss_peak", "mapped_read")
        print_table(
            ["file MB", "use_mmap", "samples read MB", "anon after open", "peak anon", "peak RSS", "data mapped"],
            [[f"{row['file_mb']:.0f}", str(row["mmap"]), *(f"{row[key]:.0f}" for key in columns)] for row in mem_rows],
        )
        print(
            "MB. samples read = distinct samples x 176 KB; anon = private memory (torch included); peak RSS = VmHWM; "
            "data mapped = page-cache pages of the file mapped by the end, shared by all workers and reclaimable."
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
