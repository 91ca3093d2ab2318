"""Command: fuse the score files of separately trained streams by a weighted sum of raw logits.

    python ensemble/ensemble.py --scores J.npz B.npz JM.npz BM.npz --preset ctrgcn-4s
    python -m ensemble.ensemble --scores F [F ...] [--weights W [W ...] | --preset NAME]
        [--labels PATH [--split test]] [--search-scores H [H ...]] [--out fused.npz [--overwrite]]
    python ensemble/ensemble.py --J_Score J.pkl --B_Score B.pkl --JM_Score JM.pkl --BM_Score BM.pkl \
        --HDJ_Score HDJ.pkl --HDB_Score HDB.pkl --val_sample NTU120_XSub_Val.txt --benchmark NTU120XSub

Score files are our ``.npz`` (preferred) or the public ``.pkl``; rows are matched by sample name to the
first file's order. Labels come from ``--labels`` (a prepared folder or CTR-GCN npz), else from the npz
files, else from NTU sample names (action id - 1). Without weights or a preset every stream weighs 1.
``--search-scores`` takes the same streams scored on held-out data (never the test set): the weights are
searched there (starting from the given weights), printed, and then applied to ``--scores``.

The upstream MMCL command works as written: ``--J_Score`` ... ``--HDB_Score`` name the streams (any may be
left out), ``--val_sample`` lists the test samples (labels from their NTU or NW-UCLA names) and
``--benchmark`` picks the published weights (NTU120XSub) of the streams given; the other benchmarks have
none, so they need ``--weights``, ``--preset`` or ``--search-scores``. Unlike upstream, rows are matched
by sample name, never by position.
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
from ensemble.labels import labels_from_names, resolve_labels
from ensemble.presets import BENCHMARKS, PRESETS, UPSTREAM_STREAMS, describe_presets
from ensemble.scores import Streams, load_streams
from ensemble.search import fuse, search_weights
from feeders.subset import read_names_file


def start_weights(count: int, weights: list[float] | None, preset: str | None,
                  tags: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """The weights asked for (``--weights``, ``--preset`` or all 1) and a tag per stream for the report.

    With ``tags`` (streams named by the upstream options) a preset gives the weights of those streams.
    """
    if preset is not None:
        if preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        streams, preset_weights = PRESETS[preset].streams, PRESETS[preset].weights
        if tags is not None:
            absent = [tag for tag in tags if tag not in streams]
            if absent:
                raise InputError(f"preset {preset} has no weight for stream {absent[0]} (it has {' '.join(streams)})")
            weights = [preset_weights[streams.index(tag)] for tag in tags]
        else:
            weights, tags = list(preset_weights), list(streams)
        what = f"preset {preset} ({' '.join(tags)})"
    else:
        what = "--weights"
    tags = tags or [str(i + 1) for i in range(count)]
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
    parser.add_argument("--scores", nargs="+", metavar="F",
                        help="score files (.npz or .pkl), one per stream (default: none: the --J_Score ... options)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--weights", nargs="+", type=float, metavar="W",
        help="one weight per score file (default: --preset's, else --benchmark's published ones, else all 1)",
    )
    choice.add_argument("--preset", metavar="NAME",
                        help="named weights, see below (default: none: --weights, else --benchmark's published ones, "
                             "else all 1)")
    parser.add_argument(
        "--labels",
        metavar="PATH",
        help="prepared dataset folder or CTR-GCN npz: labels by sample name (default: none: the npz score files' "
             "labels, else the NTU sample names)",
    )
    parser.add_argument("--split", default="test", help="split of --labels (default: test)")
    parser.add_argument("--search-scores", nargs="+", default=[], metavar="H",
                        help="held-out score files of the same streams, same order: search the weights on them "
                             "(default: none: no search)")
    parser.add_argument("--out", type=Path, metavar="FUSED_NPZ",
                        help="write the fused scores to this .npz (default: not written)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file (default: refuse)")
    upstream = parser.add_argument_group("the upstream MMCL command (instead of --scores)")
    for tag in UPSTREAM_STREAMS:
        upstream.add_argument(f"--{tag}_Score", metavar="F", help=f"score file of stream {tag} (default: none)")
    upstream.add_argument("--val_sample", metavar="NAMES_TXT",
                          help="the test sample names, one per line: the samples fused and their labels "
                               "(default: none: every scored sample, labels as for --scores)")
    upstream.add_argument("--benchmark", choices=list(BENCHMARKS),
                          help="published weights (NTU120XSub only) and the class count to expect (default: none)")
    return parser


def score_files(args: argparse.Namespace) -> tuple[list[str], list[str] | None]:
    """The score files and, if the upstream options named them, their stream tags."""
    named = [(tag, getattr(args, f"{tag}_Score")) for tag in UPSTREAM_STREAMS if getattr(args, f"{tag}_Score")]
    if args.scores and named:
        raise InputError(f"give the score files with --scores or with --J_Score ... --HDB_Score, not both "
                         f"(--{named[0][0]}_Score)")
    if not args.scores and not named:
        raise InputError("no score files: give --scores F ... or --J_Score ... --HDB_Score")
    if args.scores:
        return args.scores, None
    return [path for _, path in named], [tag for tag, _ in named]


def benchmark_preset(args: argparse.Namespace) -> str | None:
    """The preset to use: ``--preset``, else the published one of ``--benchmark`` (an error if it has none)."""
    if args.benchmark is None or args.preset is not None or args.weights is not None:
        return args.preset
    preset = BENCHMARKS[args.benchmark].preset
    if preset is None and not args.search_scores:
        raise InputError(f"--benchmark {args.benchmark} has no published weights: give --weights, --preset or "
                         f"--search-scores (weights searched on held-out scores)")
    return preset


def sample_labels(args: argparse.Namespace, streams: Streams) -> np.ndarray:
    """Labels of the fused rows: by name from ``--val_sample`` (which must list exactly the scored samples)."""
    if args.val_sample is None:
        return resolve_labels(streams, args.labels, args.split)
    listed = read_names_file(args.val_sample)
    scored = set(streams.names)
    missing = [name for name in listed if name not in scored]
    if missing:
        raise InputError(f"{streams.paths[0]}: {len(missing)} samples of {args.val_sample} have no scores "
                         f"(first: {missing[0]})")
    if len(set(listed)) != len(scored):
        extra = next(name for name in streams.names if name not in set(listed))
        raise InputError(f"{streams.paths[0]}: sample {extra} is not in {args.val_sample}")
    return labels_from_names(streams.names, args.val_sample)


@command
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.out is not None and args.out.exists() and not args.overwrite:
        raise InputError(f"{args.out} exists: pass --overwrite to replace it")
    paths, named_tags = score_files(args)
    weights, tags = start_weights(len(paths), args.weights, benchmark_preset(args), named_tags)
    streams = load_streams(paths)
    if args.benchmark is not None and streams.num_class != BENCHMARKS[args.benchmark].num_class:
        raise InputError(f"{streams.paths[0]}: {streams.num_class} classes, but --benchmark {args.benchmark} "
                         f"has {BENCHMARKS[args.benchmark].num_class}")
    labels = sample_labels(args, streams)
    if args.search_scores:
        weights = searched_weights(args.search_scores, streams, weights)
    fused = fuse(streams.scores, weights)
    report(streams, tags, labels, weights, fused)
    if args.out is not None:
        write_fused(args.out, streams, fused, labels, weights, args.search_scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
