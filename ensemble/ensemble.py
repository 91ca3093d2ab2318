"""Command: fuse the score files of separately trained streams by a weighted sum of raw logits.

    python ensemble/ensemble.py --scores J.npz B.npz JM.npz BM.npz --preset ctrgcn-4s
    python -m ensemble.ensemble --scores F [F ...] [--weights W [W ...] | --preset NAME]
        [--labels PATH [--split test]] [--search-scores H [H ...]] [--out fused.npz [--overwrite]]

Score files are our ``.npz`` (preferred) or the public ``.pkl``; rows are matched by sample name to the
first file's order. Labels come from ``--labels`` (a prepared folder or CTR-GCN npz), else from the npz
files, else from NTU sample names (action id - 1). Without weights or a preset every stream weighs 1.
``--search-scores`` takes the same streams scored on held-out data (never the test set): the weights are
searched there (starting from the given weights), printed, and then applied to ``--scores``.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a file: sys.path[0] is ensemble/, where `import ensemble` would find this
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # file; put the repository root there instead

import numpy as np

from engine.errors import InputError, command
from engine.fileio import atomic_path
from engine.metrics import topk_accuracy
from ensemble.labels import resolve_labels
from ensemble.presets import PRESETS, describe_presets
from ensemble.scores import Streams, load_streams
from ensemble.search import fuse, search_weights


def start_weights(count: int, weights: list[float] | None, preset: str | None) -> tuple[np.ndarray, list[str]]:
    """The weights asked for (``--weights``, ``--preset`` or all 1) and a tag per stream for the report."""
    tags = [str(i + 1) for i in range(count)]
    if preset is not None:
        if preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        weights, tags = list(PRESETS[preset].weights), list(PRESETS[preset].streams)
        what = f"preset {preset} ({' '.join(tags)})"
    else:
        what = "--weights"
    if weights is None:
        return np.ones(count), tags
    if len(weights) != count:
        raise InputError(f"{what} has {len(weights)} weights for {count} score files")
    weights = np.asarray(weights, dtype=np.float64)
    if not np.isfinite(weights).all() or (weights < 0).any() or not weights.any():
        raise InputError(f"{what}: weights must be finite, non-negative and not all zero")
    return weights, tags


def searched_weights(paths: list[str], test: Streams, start: np.ndarray) -> np.ndarray:
    """Search the weights on the held-out score files ``paths``, print them, and return them."""
    if len(paths) != len(test.paths):
        raise InputError(f"--search-scores has {len(paths)} files for {len(test.paths)} score files")
    held_out = load_streams(paths)
    check_held_out(held_out, test)
    labels = resolve_labels(held_out, hint="held-out files need labels: use the .npz score files")
    result = search_weights(held_out.scores, labels, start)
    total = len(labels)
    print(f"search on {total} held-out samples ({result.rounds} rounds): weights {format_weights(result.weights)}"
          f", held-out top-1 {100 * result.correct / total:.2f}% (start {100 * result.start_correct / total:.2f}%)")
    return result.weights


def check_held_out(held_out: Streams, test: Streams) -> None:
    """Held-out scores have the test scores' classes and none of their samples."""
    if held_out.num_class != test.num_class:
        raise InputError(f"{held_out.paths[0]}: {held_out.num_class} classes, but {test.paths[0]} has "
                         f"{test.num_class}")
    test_names = set(test.names)
    shared = [name for name in held_out.names if name in test_names]
    if shared:
        raise InputError(f"{held_out.paths[0]}: {len(shared)} held-out samples are also in {test.paths[0]} "
                         f"(first: {shared[0]}); weights must not be tuned on test data")


def format_weights(weights: np.ndarray) -> str:
    """Weights as typed on a command line."""
    return " ".join(f"{weight:.10g}" for weight in weights)


def report(streams: Streams, tags: list[str], labels: np.ndarray, weights: np.ndarray, fused: np.ndarray) -> None:
    """Print each stream's top-1, then the fused top-1 and top-5."""
    for tag, path, scores in zip(tags, streams.paths, streams.scores):
        print(f"{tag:>4s}  {path}: top-1 {100 * topk_accuracy(scores, labels, 1):.2f}%")
    print(f"fused (weights {format_weights(weights)}): top-1 {100 * topk_accuracy(fused, labels, 1):.2f}%  "
          f"top-5 {100 * topk_accuracy(fused, labels, 5):.2f}%  ({len(labels)} samples)")


def write_fused(path: Path, streams: Streams, fused: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                search_paths: list[str]) -> None:
    """Write the fused scores with their labels, weights and input files, atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, names=np.asarray(streams.names, dtype=str), scores=fused, labels=labels, weights=weights,
                 sources=np.asarray([str(p) for p in streams.paths], dtype=str),
                 search_sources=np.asarray(search_paths, dtype=str))
    print(f"wrote {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=describe_presets(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--scores", nargs="+", required=True, metavar="F", help="score files (.npz or .pkl), one per stream"
    )
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--weights", nargs="+", type=float, metavar="W", help="one weight per score file (default: all 1)"
    )
    choice.add_argument("--preset", metavar="NAME", help="named weights, see below")
    parser.add_argument(
        "--labels",
        metavar="PATH",
        help="prepared dataset folder or CTR-GCN npz: labels by sample name (instead of the score files')",
    )
    parser.add_argument("--split", default="test", help="split of --labels (default: test)")
    parser.add_argument("--search-scores", nargs="+", default=[], metavar="H",
                        help="held-out score files of the same streams, same order: search the weights on them")
    parser.add_argument("--out", type=Path, metavar="FUSED_NPZ", help="write the fused scores to this .npz")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return parser


@command
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.out is not None and args.out.exists() and not args.overwrite:
        raise InputError(f"{args.out} exists: pass --overwrite to replace it")
    weights, tags = start_weights(len(args.scores), args.weights, args.preset)
    streams = load_streams(args.scores)
    labels = resolve_labels(streams, args.labels, args.split)
    if args.search_scores:
        weights = searched_weights(args.search_scores, streams, weights)
    fused = fuse(streams.scores, weights)
    report(streams, tags, labels, weights, fused)
    if args.out is not None:
        write_fused(args.out, streams, fused, labels, weights, args.search_scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
