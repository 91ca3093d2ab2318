"""Command: the NW-UCLA JSON folder -> our prepared format (``train`` = views 1, 2; ``test`` = view 3).

    python -m tools.prepare_ucla --json DIR --out OUT

Samples are read with the NW-UCLA feeder's own JSON reader (feeders/ucla.py) and written unchanged (no
centring: the feeder centres at load time) as (N, 3, T_max, 20, 1) float32, zero-padded to the split's
longest sample, names = file names without ``.json``, labels 0-based, rows in file-name order.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.errors import command
from feeders.prepared import write_meta, write_prepared_split
from feeders.ucla import NUM_CLASS, NUM_JOINTS, SPLIT_VIEWS, read_json_folder


def stack_sequences(sequences: Sequence[np.ndarray]) -> np.ndarray:
    """(N, 3, T_max, 20, 1) float32 from sequences (T_i, 20, 3), zero-padded in time."""
    length = max(len(sequence) for sequence in sequences)
    data = np.zeros((len(sequences), 3, length, NUM_JOINTS, 1), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        data[row, :, : len(sequence), :, 0] = sequence.transpose(2, 0, 1)
    return data


def prepare(json_dir: str | Path, out: str | Path) -> dict[str, int]:
    """Write every split of ``SPLIT_VIEWS`` and ``meta.json`` to ``out``; return the split sizes."""
    read = {split: read_json_folder(Path(json_dir), split) for split in SPLIT_VIEWS}
    out = Path(out)
    (out / "meta.json").unlink(missing_ok=True)
    for split, (sequences, labels, names) in read.items():
        write_prepared_split(out, split, stack_sequences(sequences), labels, names)
    sizes = {split: len(names) for split, (_, _, names) in read.items()}
    write_meta(out, "ucla", NUM_CLASS, "ucla", sizes)
    return sizes


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", required=True, help="folder of aAA_sSS_eEE_vVV.json files")
    parser.add_argument("--out", required=True, help="prepared dataset folder to write")
    args = parser.parse_args(argv)
    sizes = prepare(args.json, args.out)
    print(f"{args.out}: " + ", ".join(f"{split} {count}" for split, count in sizes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
