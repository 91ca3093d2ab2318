"""Benchmark: NTU ``.skeleton`` preparation, a plain line-by-line parser vs ours, side by side.

    python -m bench.bench_ntu_prepare [--files 300] [--workers N] [--quick]

Synthesises realistic files (1-2 bodies, 60-300 frames), then times on the same files: (a) a
straightforward parser (readline, split per joint line; parsing only) in one process; (b) our
parse + denoise + centre in one process and in the pool on all cores; (c) the whole
``python -m tools.prepare_ntu`` command (pool, cache, both splits, npz), with its peak RSS.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.ntu_fixtures import realistic_frames, sample_name, write_skeleton
from tools import prepare_ntu

NTU120_FILES = 114_480


def line_parser(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The straightforward way: one readline and split per joint line; joints and colours per body id."""
    bodies: dict[str, tuple[list, list]] = {}
    with open(path) as handle:
        for _ in range(int(handle.readline())):
            for _ in range(int(handle.readline())):
                body_id = handle.readline().split()[0]
                joints, colors = bodies.setdefault(body_id, ([], []))
                for _ in range(int(handle.readline())):
                    fields = handle.readline().split()
                    joints.append([float(fields[0]), float(fields[1]), float(fields[2])])
                    colors.append([float(fields[5]), float(fields[6])])
    return {
        key: (np.array(j, np.float32).reshape(-1, 25, 3), np.array(c, np.float32))
        for key, (j, c) in bodies.items()
    }


def synthesise(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` files, ten per camera / performer group (the unit the pool works and caches by)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        group, member = divmod(i, 10)
        name = sample_name(1 + group // 120, group % 3 + 1, (group // 3) % 40 + 1, member % 2 + 1, member + 1)
        frames = realistic_frames(rng, int(rng.integers(60, 301)), 1 + int(rng.random() < 0.3))
        paths.append(write_skeleton(folder / f"{name}.skeleton", frames))
    return paths


def timed(function, *args) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def cpu_timed(function, *args) -> tuple[float, float]:
    """Wall and CPU time of one in-process call (CPU time does not depend on other jobs on the machine)."""
    cpu = time.process_time()
    wall = timed(function, *args)
    return wall, time.process_time() - cpu


def time_pool(chunks: list[prepare_ntu.Chunk], workers: int, missing: Path) -> float:
    """Stage 1 (parse, denoise, centre, cache) in a started pool: the steady-state rate of a long run."""
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(prepare_ntu.read_missing, [missing] * workers)  # start the workers and import the module
        return timed(lambda: list(pool.imap_unordered(prepare_ntu.process_chunk, chunks)))


def run_command(skeletons: Path, missing: Path, out: Path, workers: int) -> float:
    """Run the prepare command in a child process; returns its wall time."""
    command = [sys.executable, "-m", "tools.prepare_ntu", "--skeletons", str(skeletons), "--missing", str(missing),
               "--dataset", "ntu60", "--out", str(out), "--npz", "--workers", str(workers)]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300, help="synthetic .skeleton files (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=prepare_ntu.default_workers(),
                        help="processes of the pool (default: %(default)s, the cores this process may use)")
    parser.add_argument("--quick", action="store_true", help="60 files instead of --files (default: off)")
    args = parser.parse_args(argv)
    count = 60 if args.quick else args.files

    with tempfile.TemporaryDirectory(prefix="bench_ntu_") as tmp:
        root = Path(tmp)
        paths = synthesise(root / "skeletons", count)
        missing = root / "missing.txt"
        missing.write_text("")
        frames = np.mean([int(path.read_bytes().split(None, 1)[0]) for path in paths])
        line_time, line_cpu = cpu_timed(lambda: [line_parser(path) for path in paths])
        ours_time, ours_cpu = cpu_timed(lambda: [prepare_ntu.prepare_sample(path) for path in paths])
        chunks = prepare_ntu.plan_chunks(
            prepare_ntu.find_skeletons([root / "skeletons"]), root / "cache", prepare_ntu.Summary()
        )
        pool_time = time_pool(chunks, args.workers, missing)
        command_time = run_command(root / "skeletons", missing, root / "out", args.workers)

    rows = [
        ("line-by-line parser (parse only), 1 process", line_time, line_cpu),
        ("ours: parse + denoise + centre, 1 process", ours_time, ours_cpu),
        (f"ours: parse + denoise + centre + cache, pool of {args.workers} (started)", pool_time, None),
        (f"prepare command end to end, {args.workers} workers", command_time, None),
    ]
    load = os.getloadavg()[0]
    print(f"{count} synthetic files, {frames:.0f} frames on average, 1-2 bodies; load average {load:.1f}")
    print(f"{'method':<62} {'files/s':>8} {'ratio':>6} {'files/CPU-s':>11} {'ratio':>6}")
    for label, seconds, cpu in rows:
        per_cpu = f"{count / cpu:11.1f} {line_cpu / cpu:6.2f}" if cpu else f"{'-':>11} {'-':>6}"
        print(f"{label:<62} {count / seconds:8.1f} {line_time / seconds:6.2f} {per_cpu}")
    print(f"NTU120 ({NTU120_FILES:,} files) extrapolated: stage 1 {NTU120_FILES * pool_time / count / 60:.1f} min, "
          f"command {NTU120_FILES * command_time / count / 60:.1f} min, line parser alone "
          f"{NTU120_FILES * line_time / count / 60:.1f} min")
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: benchmark process {self_rss:.0f} MB, largest child (command or worker) {child_rss:.0f} MB")


if __name__ == "__main__":
    main()
