"""Command: the NW-UCLA JSON folder -> our prepared format (``train`` = views 1, 2; ``test`` = view 3).

    python -m tools.prepare_ucla --json DIR --out OUT [--strict]

Samples are read with the NW-UCLA feeder's own JSON reader (feeders/ucla.py) and written unchanged (no
centring: the feeder centres at load time) as (N, 3, T_max, 20, 1) float32, zero-padded to the split's
longest sample, names = file names without ``.json``, labels 0-based, rows in file-name order. Unusable
files (unreadable, malformed, wrong shape or label, non-finite coordinates) are skipped and listed in
``OUT/prepare_log.txt``, or stop the run with --strict (tools/sample_checks.py); a split left empty is an error.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.errors import command
from feeders.prepared import write_meta, write_prepared_split
from feeders.ucla import NUM_CLASS, NUM_JOINTS, SPLIT_VIEWS, json_files, read_json_sample
from tools.sample_checks import STRICT_HELP, check_finite, check_skips, read_or_skip, skip_note, write_skip_log


def stack_sequences(sequences: Sequence[np.ndarray]) -> np.ndarray:
    """(N, 3, T_max, 20, 1) float32 from sequences (T_i, 20, 3), zero-padded in time."""
    length = max(len(sequence) for sequence in sequences)
    data = np.zeros((len(sequences), 3, length, NUM_JOINTS, 1), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        data[row, :, : len(sequence), :, 0] = sequence.transpose(2, 0, 1)
    return data


def read_sample(path: Path) -> tuple[np.ndarray, int]:
    """One JSON sample (skeletons (T, 20, 3) float64, 0-based label) whose coordinates are all finite."""
    skeletons, label = read_json_sample(path)
    check_finite(str(path), skeletons)
    return skeletons, label


def read_split(json_dir: Path, split: str, skipped: dict[str, str]) -> dict[str, tuple[np.ndarray, int]]:
    """{name: (skeletons, label)} of the usable JSON files of ``split``; the others go to ``skipped``."""
    read = {path.stem: read_or_skip(read_sample, path.stem, path, skipped) for path in json_files(json_dir, split)}
    return {name: sample for name, sample in read.items() if sample is not None}


def prepare(json_dir: str | Path, out: str | Path, strict: bool = False) -> tuple[dict[str, int], dict[str, str]]:
    """Write every split of ``SPLIT_VIEWS`` and ``meta.json`` to ``out``; return the split sizes and the
    skipped samples (name -> reason). A split with no usable sample, or with ``strict`` any skipped file, is
    an ``InputError`` raised before anything is written."""
    skipped: dict[str, str] = {}
    read = {split: read_split(Path(json_dir), split, skipped) for split in SPLIT_VIEWS}
    empty = [split for split, samples in read.items() if not samples]
    check_skips(skipped, strict, empty=f"{json_dir}: no usable sample of split {empty[0]!r}" if empty else None)
    out = Path(out)
    write_skip_log(out, skipped)
    (out / "meta.json").unlink(missing_ok=True)
    for split, samples in read.items():
        sequences, labels = zip(*samples.values())
        write_prepared_split(out, split, stack_sequences(sequences), labels, list(samples))
    sizes = {split: len(samples) for split, samples in read.items()}
    write_meta(out, "ucla", NUM_CLASS, "ucla", sizes)
    return sizes, skipped


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", required=True, help="folder of aAA_sSS_eEE_vVV.json files")
    parser.add_argument("--out", required=True, help="prepared dataset folder to write")
    parser.add_argument("--strict", action="store_true", help=STRICT_HELP)
    args = parser.parse_args(argv)
    sizes, skipped = prepare(args.json, args.out, args.strict)
    print(f"{args.out}: " + ", ".join(f"{split} {count}" for split, count in sizes.items())
          + f"; {skip_note(args.out, skipped)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
