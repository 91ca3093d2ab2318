"""Command: choose a held-out part of a training split and write its sample names (a names file).

    python -m tools.make_holdout --data DIR [--split train] [--fraction 0.1] [--by subject|sample]
                                 [--seed 0] --out FILE [--overwrite]

The held-out samples are for choosing what must not be chosen on the test set, such as ensemble weights
(docs/method.md §8): train with ``--train-feeder-args exclude_names_file=FILE``, score the held-out samples with
``--phase test --test-feeder-args split=train names_file=FILE`` (NW-UCLA: also ``augment=false``), and give
those score files to ``ensemble/ensemble.py --search-scores``.

``--by subject`` (default) holds out whole subjects, so no person is on both sides: NTU performers
(``Pppp`` of ``SsssCcccPpppRrrrAaaa``) or NW-UCLA subjects (``sSS`` of ``aAA_sSS_eEE_vVV``); subjects are
drawn in a seeded random order until the held-out part reaches ``--fraction`` of the split. ``--by sample``
draws ``--fraction`` of every class instead. The names are written in the split's row order, one per line,
after a ``#`` line saying how they were chosen.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.errors import InputError, command
from engine.fileio import write_text_atomic
from feeders.skeleton_store import open_split
from feeders.ucla import is_prepared, read_json_folder
from tools.ntu_layout import NAME_PATTERN

#: An NW-UCLA sample name; its group is the subject id.
UCLA_NAME = re.compile(r"a\d+_s(\d+)_e\d+_v\d+")


def subject_of(name: str) -> int:
    """The subject id in an NTU (performer ``Pppp``) or NW-UCLA (subject ``sSS``) sample name."""
    ntu, ucla = NAME_PATTERN.fullmatch(name), UCLA_NAME.fullmatch(name)
    if ntu:
        return int(ntu.group(3))
    if ucla:
        return int(ucla.group(1))
    raise InputError(f"sample {name!r} is neither an NTU nor an NW-UCLA name: use --by sample")


def held_out_by_subject(names: Sequence[str], fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Mask of the samples of whole subjects, drawn in random order until ``fraction`` of the samples."""
    subjects = np.array([subject_of(name) for name in names])
    unique = np.unique(subjects)
    if len(unique) < 2:
        raise InputError(f"the split has only subject {unique[0]}: nothing would be left to train on")
    order = rng.permutation(unique)
    counts = np.array([np.count_nonzero(subjects == subject) for subject in order])
    taken = int(np.searchsorted(np.cumsum(counts), fraction * len(names))) + 1
    return np.isin(subjects, order[: min(taken, len(unique) - 1)])


def held_out_by_sample(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Mask of ``round(fraction * n)`` random samples of every class of ``n`` samples (at least one, if n > 1)."""
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        count = min(max(round(fraction * len(rows)), 1), len(rows) - 1)
        mask[rng.choice(rows, size=count, replace=False)] = True
    if not mask.any():
        raise InputError("every class has a single sample: nothing can be held out by sample")
    return mask


def names_and_labels(data: str | Path, split: str) -> tuple[list[str], np.ndarray]:
    """Sample names and labels of ``split``: an NW-UCLA JSON folder, else a prepared folder or CTR-GCN npz."""
    path = Path(data)
    if path.is_dir() and not is_prepared(path, split):  # the NW-UCLA JSON folder
        _, labels, names = read_json_folder(path, split)
        return names, np.asarray(labels)
    dataset = open_split(path, split)
    return dataset.names, np.asarray(dataset.labels)


def make_holdout(data: str | Path, split: str, fraction: float, by: str, seed: int) -> list[str]:
    """Names of the held-out samples of ``split``, in row order."""
    if not 0 < fraction < 1:
        raise InputError(f"--fraction must be between 0 and 1, got {fraction}")
    names, labels = names_and_labels(data, split)
    rng = np.random.default_rng(seed)
    mask = held_out_by_subject(names, fraction, rng) if by == "subject" else held_out_by_sample(labels, fraction, rng)
    return [name for name, held in zip(names, mask) if held]


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="prepared dataset folder (or CTR-GCN npz / NW-UCLA JSON)")
    parser.add_argument("--split", default="train", help="split to hold a part out of (default: train)")
    parser.add_argument("--fraction", type=float, default=0.1, help="share of the split to hold out (default 0.1)")
    parser.add_argument(
        "--by", choices=("subject", "sample"), default="subject",
        help="hold out whole subjects or single samples (default: subject)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random choice (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="names file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.overwrite:
        raise InputError(f"{args.out} exists: pass --overwrite to replace it")
    names = make_holdout(args.data, args.split, args.fraction, args.by, args.seed)
    how = f"--by {args.by} --fraction {args.fraction} --seed {args.seed}"
    lines = [f"# held out of {args.data} split {args.split}: {how}", *names]
    write_text_atomic(args.out, "".join(f"{line}\n" for line in lines))
    print(f"wrote {len(names)} held-out sample names to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
