"""Command: SYSU 3D HOI skeletons -> our prepared format in the NTU 25-joint layout (test split).

    python -m tools.prepare_sysu --skeletons SYSU3DAction --out OUT [--zero-shot [--class-map MAP.json]]
                                 [--joint-order sdk|utd] [--format release|npy] [--strict]

Input (``--format release``, the default) is the extracted release: one folder per subject, named after
the person (e.g. ``BoTong``), holding one folder ``video<A>`` per action A = 1..12, whose ``sklWorld.mat``
has the variable ``SW``: (20, 3, T) Kinect v1 world joints, in the Kinect SDK order (``--joint-order sdk``)::

    SYSU3DAction/3DvideoNorm/<subject>/video<A>/sklWorld.mat   (also sklImage.mat, rgb/, depth/: unused)

``--skeletons`` is the folder holding ``3DvideoNorm/`` or ``3DvideoNorm/`` itself; folders without
``video<A>`` sub-folders (e.g. ``matlabcode``) are skipped. Samples are named ``<subject>_video<A>`` and
ordered by action, then subject. ``--format npy`` reads instead a flat folder of ``<subject>_<action>.npy``
arrays (T, 20, 3) (``s``/``a`` prefixes allowed, e.g. ``s03_a01.npy``), named by their stem.

Samples are mapped to NTU joints and centred as for UTD-MHAD (tools/kinect_v1.py). Labels are
``action - 1``, or with ``--zero-shot`` only the actions of the class map, labelled with their NTU120
class. The default map is a candidate from docs/method.md §7, not published by the paper: drinking -> 0,
calling phone -> 27, playing phone -> 28.

Unusable samples (a ``video<A>`` folder without ``sklWorld.mat``, an action outside 1..12, an unreadable or
corrupt file, a wrong shape, non-finite coordinates) are skipped and listed in ``OUT/prepare_log.txt``, or
stop the run with --strict (tools/sample_checks.py).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from engine.errors import InputError, command
from feeders.skeleton_store import load_npy
from tools.kinect_v1 import JOINT_ORDERS, NUM_KINECT_JOINTS, SPLIT, write_ntu_test_split
from tools.matfile import read_mat_variable
from tools.sample_checks import STRICT_HELP, check_finite, check_skips, read_or_skip, skip_note, write_skip_log

#: SYSU 3D HOI actions, action number (``video<A>``) = position + 1 (order of public SYSU class-name lists).
ACTIONS = (
    "drinking", "pouring", "calling phone", "playing phone", "wearing backpacks", "packing backpacks",
    "sitting chair", "moving chair", "taking out wallet", "taking from wallet", "mopping", "sweeping",
)  # fmt: skip
NTU120_CLASSES = 120
#: Candidate SYSU action -> NTU120 class (0-based) map (docs/method.md §7; unverified).
DEFAULT_CLASS_MAP = {"drinking": 0, "calling phone": 27, "playing phone": 28}
FORMATS = ("release", "npy")
RELEASE_FOLDER = "3DvideoNorm"
SKELETON_FILE = "sklWorld.mat"
KEY = "SW"
VIDEO_PATTERN = re.compile(r"video(\d+)")
NPY_PATTERN = re.compile(r"s?(\d+)_a?(\d+)\.npy")


class Sample(NamedTuple):
    """One SYSU sequence: its action number (1-based), subject, output name and file."""

    action: int
    subject: str
    name: str
    path: Path


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


def release_root(folder: str | Path) -> Path:
    """The folder of subject folders: ``folder/3DvideoNorm`` if it exists, else ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory (expected the SYSU release's {RELEASE_FOLDER} or its parent)")
    nested = folder / RELEASE_FOLDER
    return nested if nested.is_dir() else folder


def find_release_files(folder: str | Path) -> list[Sample]:
    """The ``<subject>/video<A>/sklWorld.mat`` of every ``video<A>`` folder of the release under ``folder``
    (the file may be missing: reading it says so), by action then subject."""
    root = release_root(folder)
    found = []
    for video in root.glob("*/video*"):
        match = VIDEO_PATTERN.fullmatch(video.name)
        if match and video.is_dir():
            subject = video.parent.name
            found.append(Sample(int(match.group(1)), subject, f"{subject}_{video.name}", video / SKELETON_FILE))
    if not found:
        raise InputError(f"{root}: no SYSU <subject>/video<A>/{SKELETON_FILE} files")
    return sorted(found, key=lambda sample: (sample.action, sample.subject))


def find_npy_files(folder: str | Path) -> list[Sample]:
    """Every ``<subject>_<action>.npy`` in ``folder``, by action then subject number."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory of SYSU <subject>_<action>.npy files")
    found = []
    for path in folder.iterdir():
        match = NPY_PATTERN.fullmatch(path.name)
        if match:
            subject, action = (int(group) for group in match.groups())
            found.append((action, subject, path))
    if not found:
        raise InputError(f"{folder}: no SYSU files named <subject>_<action>.npy")
    return [Sample(action, str(subject), path.stem, path) for action, subject, path in sorted(found)]


def select_samples(samples: list[Sample], ntu_class: dict[int, int] | None, skipped: dict[str, str]) -> list[Sample]:
    """The samples to read: those of the actions of ``ntu_class`` (zero-shot), or of actions 1..12 (the
    others go to ``skipped`` with the reason)."""
    if ntu_class is not None:
        return [sample for sample in samples if sample.action in ntu_class]
    for sample in samples:
        if not 1 <= sample.action <= len(ACTIONS):
            skipped[sample.name] = f"{sample.path}: action {sample.action} is outside 1..{len(ACTIONS)}"
    return [sample for sample in samples if sample.name not in skipped]


def _checked(path: Path, joints: np.ndarray, what: str) -> np.ndarray:
    """``joints`` (T, 20, 3) as float64 once it has a frame and only finite numbers."""
    if len(joints) == 0:
        raise InputError(f"{path}: {what} has no frame")
    if not np.issubdtype(joints.dtype, np.number):
        raise InputError(f"{path}: {what} must hold numbers, got {joints.dtype}")
    check_finite(str(path), joints)
    return joints.astype(np.float64)


def read_release_skeleton(path: str | Path) -> np.ndarray:
    """The joints of one ``sklWorld.mat`` (``SW``, (20, 3, T)) as (T, 20, 3) float64."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path.parent}: no {path.name}")
    joints = read_mat_variable(path, KEY)
    if joints.ndim == 2:  # MATLAB drops the trailing frame axis of a one-frame sequence
        joints = joints[..., None]
    if joints.ndim != 3 or joints.shape[1] != 3:
        raise InputError(f"{path}: {KEY!r} must be ({NUM_KINECT_JOINTS}, 3, T), got shape {joints.shape}")
    if joints.shape[0] != NUM_KINECT_JOINTS:
        raise InputError(f"{path}: {KEY!r} has {joints.shape[0]} joints, expected {NUM_KINECT_JOINTS}")
    return _checked(path, joints.transpose(2, 0, 1), repr(KEY))


def read_npy_skeleton(path: str | Path) -> np.ndarray:
    """One sequence (T, 20, 3) float64 from a ``.npy`` file (pickled objects are refused)."""
    path = Path(path)
    joints = load_npy(path)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_KINECT_JOINTS, 3):
        raise InputError(f"{path}: must be (T, {NUM_KINECT_JOINTS}, 3), got shape {joints.shape}")
    return _checked(path, joints, "the array")


_READERS = {"release": (find_release_files, read_release_skeleton), "npy": (find_npy_files, read_npy_skeleton)}


def prepare(
    skeletons: str | Path,
    out: str | Path,
    zero_shot: bool = False,
    class_map: dict[str, int] | None = None,
    order: str = "sdk",
    fmt: str = "release",
    strict: bool = False,
) -> tuple[int, dict[str, str]]:
    """Write the prepared test split of the SYSU samples under ``skeletons`` to ``out``; return its size and
    the skipped samples (name -> reason). Nothing usable, or with ``strict`` any skipped sample, is an
    ``InputError`` raised before anything is written."""
    find, read = _READERS[fmt]
    ntu_class = None
    if zero_shot:
        ntu_class = {ACTIONS.index(action) + 1: index for action, index in (class_map or DEFAULT_CLASS_MAP).items()}
    skipped: dict[str, str] = {}
    samples = select_samples(find(skeletons), ntu_class, skipped)
    if zero_shot and not samples:
        raise InputError(f"{skeletons}: no sample of the mapped actions {sorted(ntu_class)}")
    read_samples = [(sample, read_or_skip(read, sample.name, sample.path, skipped)) for sample in samples]
    kept = [(sample, joints) for sample, joints in read_samples if joints is not None]
    check_skips(skipped, strict, empty=None if kept else f"{skeletons}: no usable SYSU sample")
    write_skip_log(out, skipped)
    labels = [ntu_class[sample.action] if zero_shot else sample.action - 1 for sample, _ in kept]
    names = [sample.name for sample, _ in kept]
    dataset, num_class = ("sysu-zeroshot", NTU120_CLASSES) if zero_shot else ("sysu", len(ACTIONS))
    write_ntu_test_split(out, dataset, num_class, [joints for _, joints in kept], labels, names, order)
    return len(kept), skipped


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skeletons", required=True, help="the release folder holding 3DvideoNorm/ (or it itself)")
    parser.add_argument("--out", required=True, help="prepared dataset folder to write")
    parser.add_argument("--zero-shot", action="store_true",
                        help="only the mapped actions, NTU120 labels (default: off, all 12 actions)")
    parser.add_argument("--class-map",
                        help="JSON {SYSU action name: NTU120 index} for --zero-shot (default: the candidate map "
                             "drinking 0, calling phone 27, playing phone 28)")
    parser.add_argument("--joint-order", choices=sorted(JOINT_ORDERS), default="sdk",
                        help="joint order of the files (default: sdk)")
    parser.add_argument("--format", choices=FORMATS, default="release",
                        help="release tree or <subject>_<action>.npy (default: release)")
    parser.add_argument("--strict", action="store_true", help=STRICT_HELP)
    args = parser.parse_args(argv)
    if args.class_map and not args.zero_shot:
        parser.error("--class-map is used only with --zero-shot")
    class_map = read_class_map(args.class_map) if args.class_map else None
    count, skipped = prepare(args.skeletons, args.out, args.zero_shot, class_map, args.joint_order, args.format,
                             args.strict)  # fmt: skip
    print(f"wrote {count} samples to {Path(args.out) / SPLIT}_data.npy; {skip_note(args.out, skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
