"""Time the ensemble on NTU120 X-Sub sizes: loading + fusing the score files, and the weight search.

    python -m bench.bench_ensemble [--streams 6] [--samples 50919] [--classes 120]

Writes synthetic score files with the trainer's writer (``engine.reports.write_scores``: a ``.pkl`` and an
``.npz`` per stream) into a temporary folder, then times ``load_streams`` + ``fuse`` on the npz files and
on the pickles (best of 3), and ``search_weights`` on a held-out set of the same size. Prints the figures.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.reports import write_scores
from ensemble.labels import resolve_labels
from ensemble.scores import load_streams
from ensemble.search import fuse, search_weights


def write_streams(folder: Path, prefix: str, streams: int, samples: int, classes: int, seed: int) -> list[Path]:
    """Score files of ``streams`` synthetic streams of increasing skill with partly shared errors; npz paths."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(classes, size=samples)
    names = [f"S{i % 32 + 1:03d}C001P{i // 32 % 1000:03d}R{i // 32000 + 1:03d}A{label + 1:03d}"
             for i, label in enumerate(labels)]
    shared = rng.standard_normal((samples, classes), dtype=np.float32)
    for stream in range(streams):
        scores = 0.8 * shared + 0.6 * rng.standard_normal((samples, classes), dtype=np.float32)
        scores[np.arange(samples), labels] += 3.2 + 0.1 * stream
        write_scores(folder, f"{prefix}{stream}", names, scores, labels)
    return [folder / f"{prefix}{stream}_score.npz" for stream in range(streams)]


def timed(function, *args, repeats: int = 3):
    """``function(*args)`` and its best wall time in seconds over ``repeats`` calls."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function(*args)
        seconds.append(time.perf_counter() - started)
    return result, min(seconds)


def load_and_fuse(paths: list[Path]) -> np.ndarray:
    """What the command does before reporting: read, align, label, fuse."""
    streams = load_streams(paths)
    resolve_labels(streams)
    return fuse(streams.scores, np.ones(len(paths)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=6, help="score files (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=50919,
                        help="rows per score file (default: %(default)s, NTU120 X-Sub's test set)")
    parser.add_argument("--classes", type=int, default=120, help="scores per row (default: %(default)s)")
    args = parser.parse_args(argv)
    size = f"{args.streams} streams x {args.samples} samples x {args.classes} classes"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        test = write_streams(folder, "test", args.streams, args.samples, args.classes, seed=0)
        held_out = write_streams(folder, "val", args.streams, args.samples, args.classes, seed=1)
        _, npz_seconds = timed(load_and_fuse, test)
        _, pkl_seconds = timed(load_and_fuse, [path.with_suffix(".pkl") for path in test])
        streams = load_streams(held_out)
        labels = resolve_labels(streams)
        result, search_seconds = timed(search_weights, streams.scores, labels, np.ones(args.streams), repeats=1)
    print(size)
    print(f"load + fuse, npz files:    {npz_seconds:6.2f} s (best of 3)")
    print(f"load + fuse, pickle files: {pkl_seconds:6.2f} s (best of 3)")
    print(f"weight search (held-out of the same size): {search_seconds:6.2f} s, {result.rounds} rounds, "
          f"top-1 {100 * result.start_correct / len(labels):.2f}% -> {100 * result.correct / len(labels):.2f}%, "
          f"weights {' '.join(f'{w:g}' for w in result.weights)}")


if __name__ == "__main__":
    main()
