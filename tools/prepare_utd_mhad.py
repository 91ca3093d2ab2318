"""Command: UTD-MHAD skeleton ``.mat`` files -> our prepared format in the NTU 25-joint layout (test split).

    python -m tools.prepare_utd_mhad --skeletons DIR --out OUT [--zero-shot]

Reads every ``aA_sS_tT_skeleton.mat`` (key ``d_skel``, (20, 3, T)), maps the Kinect v1 joints to NTU's
(tools/kinect_v1.py), centres each sample on NTU joint 2 of its first frame, pads to the longest sample
with an empty second person and writes ``OUT/test_*`` and ``OUT/meta.json``. Labels are ``A - 1`` over
27 classes, or with ``--zero-shot`` only the six actions shared with NTU120, labelled with their NTU120
class (docs/method.md §7). Rows are ordered by action, subject, trial. ``OUT/test_color.npy`` holds the joints
projected into the 640 × 480 colour frames (as NTU's colour joints), for cropping the RGB strips of the
``aA_sS_tT_color.avi`` videos with tools/make_rgb_strips.py.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.errors import InputError, command
from tools.kinect_v1 import NUM_KINECT_JOINTS, SPLIT, write_ntu_test_split
from tools.matfile import read_mat_variable

NUM_CLASS = 27
NTU120_CLASSES = 120
KEY = "d_skel"
#: UTD-MHAD action (1-based) -> NTU120 class (0-based) for the zero-shot protocol (docs/method.md §7).
ZERO_SHOT_MAP = {3: 22, 6: 95, 7: 62, 24: 8, 25: 7, 27: 79}
FILE_PATTERN = re.compile(r"a(\d+)_s(\d+)_t(\d+)_skeleton\.mat")


def find_files(folder: str | Path) -> list[tuple[tuple[int, int, int], Path]]:
    """((action, subject, trial), path) of every UTD-MHAD skeleton file in ``folder``, sorted by the ids."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory of UTD-MHAD aA_sS_tT_skeleton.mat files")
    found = []
    for path in folder.iterdir():
        match = FILE_PATTERN.fullmatch(path.name)
        if match:
            ids = tuple(int(group) for group in match.groups())
            if not 1 <= ids[0] <= NUM_CLASS:
                raise InputError(f"{path}: action {ids[0]} is outside 1..{NUM_CLASS}")
            found.append((ids, path))
    if not found:
        raise InputError(f"{folder}: no UTD-MHAD files named aA_sS_tT_skeleton.mat")
    return sorted(found)


def read_skeleton(path: str | Path) -> np.ndarray:
    """The joints of one file as (T, 20, 3) float64, in UTD-MHAD's Kinect v1 order."""
    joints = read_mat_variable(path, KEY)
    if joints.ndim != 3 or joints.shape[:2] != (NUM_KINECT_JOINTS, 3) or joints.shape[2] == 0:
        raise InputError(f"{path}: {KEY!r} must be ({NUM_KINECT_JOINTS}, 3, T) with T >= 1, got shape {joints.shape}")
    if not np.issubdtype(joints.dtype, np.number) or not np.isfinite(joints).all():
        raise InputError(f"{path}: {KEY!r} must hold finite numbers")
    return joints.transpose(2, 0, 1).astype(np.float64)


def prepare(skeletons: str | Path, out: str | Path, zero_shot: bool = False) -> int:
    """Write the prepared test split of the UTD-MHAD files in ``skeletons`` to ``out``; return its size."""
    files = find_files(skeletons)
    if zero_shot:
        files = [(ids, path) for ids, path in files if ids[0] in ZERO_SHOT_MAP]
        if not files:
            raise InputError(f"{skeletons}: no file of the zero-shot actions {sorted(ZERO_SHOT_MAP)}")
    actions = [ids[0] for ids, _ in files]
    labels = [ZERO_SHOT_MAP[action] for action in actions] if zero_shot else [action - 1 for action in actions]
    names = [path.name.removesuffix("_skeleton.mat") for _, path in files]
    sequences = [read_skeleton(path) for _, path in files]
    dataset, num_class = ("utd_mhad-zeroshot", NTU120_CLASSES) if zero_shot else ("utd_mhad", NUM_CLASS)
    write_ntu_test_split(out, dataset, num_class, sequences, labels, names, colour=True)
    return len(names)


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skeletons", required=True, help="folder of aA_sS_tT_skeleton.mat files")
    parser.add_argument("--out", required=True, help="prepared dataset folder to write")
    parser.add_argument("--zero-shot", action="store_true", help="only the 6 actions shared with NTU120, NTU labels")
    args = parser.parse_args(argv)
    count = prepare(args.skeletons, args.out, args.zero_shot)
    print(f"wrote {count} samples to {Path(args.out) / SPLIT}_data.npy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
