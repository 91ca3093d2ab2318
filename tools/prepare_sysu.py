"""Command: SYSU 3D HOI skeletons -> our prepared format in the NTU 25-joint layout (test split).

    python -m tools.prepare_sysu --skeletons DIR --out OUT [--zero-shot [--class-map MAP.json]]
                                 [--joint-order sdk|utd]

Input layout (the raw release's file format could not be confirmed, so this is our documented layout):
a folder of ``<subject>_<action>.npy`` files (``s`` / ``a`` prefixes allowed, e.g. ``s03_a01.npy``),
each a float array (T, 20, 3) of Kinect v1 joints in metres, in the Kinect SDK order (``sdk``, default)
or UTD-MHAD's (``utd``). Actions are numbered 1-12 in the order of ``ACTIONS``. Samples are mapped to
NTU joints and centred as for UTD-MHAD (tools/kinect_v1.py). Labels are ``action - 1``, or with
``--zero-shot`` only the actions of the class map, labelled with their NTU120 class. The default map is
a candidate from SPEC §7, not published by the paper: drinking -> 0, calling phone -> 27, playing phone -> 28.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.errors import InputError, command
from tools.kinect_v1 import JOINT_ORDERS, NUM_KINECT_JOINTS, SPLIT, write_ntu_test_split

#: SYSU 3D HOI actions, action number = position + 1 (order of the dataset paper; unverified).
ACTIONS = (
    "drinking", "pouring", "calling phone", "playing phone", "wearing backpacks", "packing backpacks",
    "sitting chair", "moving chair", "taking out wallet", "taking from wallet", "mopping", "sweeping",
)  # fmt: skip
NTU120_CLASSES = 120
#: Candidate SYSU action -> NTU120 class (0-based) map (SPEC §7; unverified).
DEFAULT_CLASS_MAP = {"drinking": 0, "calling phone": 27, "playing phone": 28}
FILE_PATTERN = re.compile(r"s?(\d+)_a?(\d+)\.npy")


def read_class_map(path: str | Path) -> dict[str, int]:
    """A JSON object {SYSU action name: NTU120 class index}, validated."""
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(f"{path}: cannot read the class map ({error.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: malformed JSON ({' '.join(str(error).split())})") from None
    if not isinstance(content, dict) or not content:
        raise InputError(f"{path}: the class map must be a non-empty JSON object {{action name: NTU120 index}}")
    for action, index in content.items():
        if action not in ACTIONS:
            raise InputError(f"{path}: unknown SYSU action {action!r} (known: {', '.join(ACTIONS)})")
        if type(index) is not int or not 0 <= index < NTU120_CLASSES:
            raise InputError(f"{path}: class of {action!r} must be an integer in 0..{NTU120_CLASSES - 1}, got {index!r}")
    return content


def find_files(folder: str | Path) -> list[tuple[tuple[int, int], Path]]:
    """((action, subject), path) of every ``<subject>_<action>.npy`` in ``folder``, sorted by the ids."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory of SYSU <subject>_<action>.npy files")
    found = []
    for path in folder.iterdir():
        match = FILE_PATTERN.fullmatch(path.name)
        if match:
            subject, action = (int(group) for group in match.groups())
            if not 1 <= action <= len(ACTIONS):
                raise InputError(f"{path}: action {action} is outside 1..{len(ACTIONS)}")
            found.append(((action, subject), path))
    if not found:
        raise InputError(f"{folder}: no SYSU files named <subject>_<action>.npy")
    return sorted(found)


def read_skeleton(path: str | Path) -> np.ndarray:
    """One sequence (T, 20, 3) float64 from a ``.npy`` file (pickled objects are refused)."""
    try:
        joints = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable .npy array ({' '.join(str(error).split())})") from None
    if joints.ndim != 3 or joints.shape[1:] != (NUM_KINECT_JOINTS, 3) or len(joints) == 0:
        raise InputError(f"{path}: must be (T, {NUM_KINECT_JOINTS}, 3) with T >= 1, got shape {joints.shape}")
    if not np.issubdtype(joints.dtype, np.number) or not np.isfinite(joints).all():
        raise InputError(f"{path}: must hold finite numbers")
    return joints.astype(np.float64)


def prepare(
    skeletons: str | Path,
    out: str | Path,
    zero_shot: bool = False,
    class_map: dict[str, int] | None = None,
    order: str = "sdk",
) -> int:
    """Write the prepared test split of the SYSU files in ``skeletons`` to ``out``; return its size."""
    files = find_files(skeletons)
    if zero_shot:
        ntu_class = {ACTIONS.index(action) + 1: index for action, index in (class_map or DEFAULT_CLASS_MAP).items()}
        files = [(ids, path) for ids, path in files if ids[0] in ntu_class]
        if not files:
            raise InputError(f"{skeletons}: no file of the mapped actions {sorted(ntu_class)}")
        labels = [ntu_class[ids[0]] for ids, _ in files]
    else:
        labels = [ids[0] - 1 for ids, _ in files]
    names = [path.stem for _, path in files]
    sequences = [read_skeleton(path) for _, path in files]
    dataset, num_class = ("sysu-zeroshot", NTU120_CLASSES) if zero_shot else ("sysu", len(ACTIONS))
    write_ntu_test_split(out, dataset, num_class, sequences, labels, names, order)
    return len(names)


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skeletons", required=True, help="folder of <subject>_<action>.npy arrays (T, 20, 3)")
    parser.add_argument("--out", required=True, help="prepared dataset folder to write")
    parser.add_argument("--zero-shot", action="store_true", help="only the mapped actions, NTU120 labels")
    parser.add_argument("--class-map", help="JSON {SYSU action name: NTU120 index} for --zero-shot")
    parser.add_argument("--joint-order", choices=sorted(JOINT_ORDERS), default="sdk", help="joint order of the files")
    args = parser.parse_args(argv)
    if args.class_map and not args.zero_shot:
        parser.error("--class-map is used only with --zero-shot")
    class_map = read_class_map(args.class_map) if args.class_map else None
    count = prepare(args.skeletons, args.out, args.zero_shot, class_map, args.joint_order)
    print(f"wrote {count} samples to {Path(args.out) / SPLIT}_data.npy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
