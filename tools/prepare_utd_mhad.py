"""Command: UTD-MHAD skeleton ``.mat`` files -> our prepared format in the NTU 25-joint layout (test split).

    python -m tools.prepare_utd_mhad --skeletons DIR --out OUT [--zero-shot] [--strict]

Reads every ``aA_sS_tT_skeleton.mat`` (key ``d_skel``, (20, 3, T)), maps the Kinect v1 joints to NTU's
(tools/kinect_v1.py), centres each sample on NTU joint 2 of its first frame, pads to the longest sample
with an empty second person and writes ``OUT/test_*`` and ``OUT/meta.json``. Labels are ``A - 1`` over
27 classes, or with ``--zero-shot`` only the six actions shared with NTU120, labelled with their NTU120
class (docs/method.md §7). Rows are ordered by action, subject, trial. ``OUT/test_color.npy`` holds the joints
projected into the 640 × 480 colour frames (as NTU's colour joints), for cropping the RGB strips of the
``aA_sS_tT_color.avi`` videos with tools/make_rgb_strips.py. Unusable files (unreadable, corrupt, wrong
shape, non-finite coordinates, action outside 1..27) are skipped and listed in ``OUT/prepare_log.txt``, or
stop the run with --strict (tools/sample_checks.py).
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
from tools.sample_checks import STRICT_HELP, check_finite, check_skips, read_or_skip, skip_note, write_skip_log

NUM_CLASS = 27
NTU120_CLASSES = 120
KEY = "d_skel"
#: UTD-MHAD action (1-based) -> NTU120 class (0-based) for the zero-shot protocol (docs/method.md §7).
ZERO_SHOT_MAP = {3: 22, 6: 95, 7: 62, 24: 8, 25: 7, 27: 79}
FILE_PATTERN = re.compile(r"a(\d+)_s(\d+)_t(\d+)_skeleton\.mat")


def sample_name(path: Path) -> str:
    """``aA_sS_tT``: the name of the sample of a skeleton file."""
    return path.name.removesuffix("_skeleton.mat")


def find_files(folder: str | Path) -> list[tuple[tuple[int, int, int], Path]]:
    """((action, subject, trial), path) of every UTD-MHAD skeleton file in ``folder``, sorted by the ids."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory of UTD-MHAD aA_sS_tT_skeleton.mat files")
    found = []
    for path in folder.iterdir():
        match = FILE_PATTERN.fullmatch(path.name)
        if match:
            found.append((tuple(int(group) for group in match.groups()), path))
    if not found:
        raise InputError(f"{folder}: no UTD-MHAD files named aA_sS_tT_skeleton.mat")
    return sorted(found)


def select_files(files: list[tuple[tuple[int, int, int], Path]], zero_shot: bool, skipped: dict[str, str]
                 ) -> list[tuple[int, Path]]:
    """(action, path) of the files to read: those of the zero-shot actions, or of actions 1..27 (the others
    go to ``skipped`` with the reason)."""
    if zero_shot:
        return [(ids[0], path) for ids, path in files if ids[0] in ZERO_SHOT_MAP]
    for ids, path in files:
        if not 1 <= ids[0] <= NUM_CLASS:
            skipped[sample_name(path)] = f"{path}: action {ids[0]} is outside 1..{NUM_CLASS}"
    return [(ids[0], path) for ids, path in files if sample_name(path) not in skipped]


def read_skeleton(path: str | Path) -> np.ndarray:
    """The joints of one file as (T, 20, 3) float64, in UTD-MHAD's Kinect v1 order."""
    joints = read_mat_variable(path, KEY)
    if joints.ndim != 3 or joints.shape[:2] != (NUM_KINECT_JOINTS, 3) or joints.shape[2] == 0:
        raise InputError(f"{path}: {KEY!r} must be ({NUM_KINECT_JOINTS}, 3, T) with T >= 1, got shape {joints.shape}")
    if not np.issubdtype(joints.dtype, np.number):
        raise InputError(f"{path}: {KEY!r} must hold numbers, got {joints.dtype}")
    joints = joints.transpose(2, 0, 1)
    check_finite(str(path), joints)
    return joints.astype(np.float64)


def prepare(
    skeletons: str | Path, out: str | Path, zero_shot: bool = False, strict: bool = False
) -> tuple[int, dict[str, str]]:
    """Write the prepared test split of the UTD-MHAD files in ``skeletons`` to ``out``; return its size and
    the skipped samples (name -> reason). Nothing usable, or with ``strict`` any skipped file, is an
    ``InputError`` raised before anything is written."""
    skipped: dict[str, str] = {}
    files = select_files(find_files(skeletons), zero_shot, skipped)
    if zero_shot and not files:
        raise InputError(f"{skeletons}: no file of the zero-shot actions {sorted(ZERO_SHOT_MAP)}")
    read = [(action, sample_name(path), read_or_skip(read_skeleton, sample_name(path), path, skipped))
            for action, path in files]  # fmt: skip
    kept = [(action, name, joints) for action, name, joints in read if joints is not None]
    check_skips(skipped, strict, empty=None if kept else f"{skeletons}: no usable UTD-MHAD file")
    write_skip_log(out, skipped)
    actions, names, sequences = zip(*kept)
    labels = [ZERO_SHOT_MAP[action] for action in actions] if zero_shot else [action - 1 for action in actions]
    dataset, num_class = ("utd_mhad-zeroshot", NTU120_CLASSES) if zero_shot else ("utd_mhad", NUM_CLASS)
    write_ntu_test_split(out, dataset, num_class, sequences, labels, names, colour=True)
    return len(names), skipped


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skeletons", required=True, help="folder of aA_sS_tT_skeleton.mat files")
    parser.add_argument("--out", required=True, help="prepared dataset folder to write")
    parser.add_argument("--zero-shot", action="store_true",
                        help="only the 6 actions shared with NTU120, NTU labels (default: off, all 27 actions)")
    parser.add_argument("--strict", action="store_true", help=STRICT_HELP)
    args = parser.parse_args(argv)
    count, skipped = prepare(args.skeletons, args.out, args.zero_shot, args.strict)
    print(f"wrote {count} samples to {Path(args.out) / SPLIT}_data.npy; {skip_note(args.out, skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
