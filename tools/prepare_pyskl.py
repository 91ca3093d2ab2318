"""Command: a pyskl 3D annotation pickle (``ntu60_3danno.pkl``, ``ntu120_3danno.pkl``) -> our prepared format.

    python -m tools.prepare_pyskl --pickle ntu120_3danno.pkl --out OUT [--protocols xsub xset]
                                  [--num-class K] [--no-centre]

The pickle (pyskl ``tools/data/README.md``) is ``{'split': {name: [frame_dir, ...]}, 'annotations':
[{'frame_dir', 'label', 'keypoint' (M, T, 25, 3), 'total_frames', ...}]}``; it is read with a restricted
unpickler (tools/safe_pickle.py). Each split named ``<protocol>_train`` / ``<protocol>_val`` (or
``_test``) becomes ``OUT/<protocol>/train_*`` / ``test_*``: data (N, 3, T_max, 25, 2) float32 with
T_max the longest sample of the file, persons padded to 2 with zeros, names = frame_dir, labels as given,
rows in the split's order. Unless ``--no-centre``, samples are centred as CTR-GCN does: origin = joint 2
of person 1 in its first non-zero frame, absent frames and persons stay zero.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.errors import InputError, command
from engine.fileio import atomic_path, write_text_atomic
from feeders.prepared import split_paths, write_meta, write_npy_atomic
from tools.ntu_layout import NpyWriter
from tools.safe_pickle import load_pickle

NUM_JOINTS = 25
NUM_PERSONS = 2
#: Joint (0-based) whose position in person 1's first non-zero frame becomes the origin.
CENTRE_JOINT = 1
#: pyskl split suffix -> our split name.
PARTS = {"train": "train", "val": "test", "test": "test"}
SPLIT_PATTERN = re.compile(r"(.+)_(train|val|test)")


@dataclass(frozen=True)
class Annotations:
    """A validated pyskl file: keypoints (M, T, 25, 3) and label by frame_dir, split lists, class count."""

    keypoints: dict[str, np.ndarray]
    labels: dict[str, int]
    splits: dict[str, list[str]]
    num_class: int


def read_annotations(path: str | Path, num_class: int | None = None) -> Annotations:
    """Read and validate a pyskl 3D annotation pickle (every sample a split refers to is checked)."""
    content = load_pickle(path)
    if not isinstance(content, dict) or not {"split", "annotations"} <= content.keys():
        raise InputError(f"{path}: not a pyskl annotation file (a dict with 'split' and 'annotations')")
    splits, entries = content["split"], content["annotations"]
    if not isinstance(splits, dict) or not isinstance(entries, list):
        raise InputError(f"{path}: 'split' must be a dict of lists and 'annotations' a list")
    by_name = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("frame_dir"), str):
            raise InputError(f"{path}: annotation {position} has no string 'frame_dir'")
        by_name[entry["frame_dir"]] = entry
    keypoints, labels = {}, {}
    for split, names in splits.items():
        if not isinstance(names, list):
            raise InputError(f"{path}: split {split!r} must be a list of frame_dir names")
        for name in names:
            if name not in by_name:
                raise InputError(f"{path}: split {split!r} names {name!r}, which has no annotation")
            if name not in keypoints:
                keypoints[name], labels[name] = _check_entry(path, by_name[name])
    if not keypoints:
        raise InputError(f"{path}: the splits name no sample")
    top = max(labels.values())
    if num_class is None:
        num_class = top + 1
    elif top >= num_class:
        culprit = max(labels, key=labels.get)
        raise InputError(f"{path}: sample {culprit!r} has label {top}, outside 0..{num_class - 1}")
    return Annotations(keypoints, labels, {split: list(names) for split, names in splits.items()}, num_class)


def _check_entry(path: str | Path, entry: dict) -> tuple[np.ndarray, int]:
    """The keypoints (M, T, 25, 3) cut to ``total_frames`` and the label of one annotation, validated."""
    name = entry["frame_dir"]
    keypoint, label = entry.get("keypoint"), entry.get("label")
    if not isinstance(keypoint, np.ndarray) or not np.issubdtype(keypoint.dtype, np.number):
        raise InputError(f"{path}: sample {name!r} has no numeric 'keypoint' array")
    if keypoint.ndim != 4 or keypoint.shape[2:] != (NUM_JOINTS, 3) or not 1 <= keypoint.shape[0] <= NUM_PERSONS:
        raise InputError(
            f"{path}: sample {name!r} keypoint must be (M<={NUM_PERSONS}, T, {NUM_JOINTS}, 3), got {keypoint.shape}"
        )
    frames = entry.get("total_frames", keypoint.shape[1])
    if not isinstance(frames, (int, np.integer)) or not 1 <= frames <= keypoint.shape[1]:
        raise InputError(f"{path}: sample {name!r} total_frames {frames!r} does not fit its {keypoint.shape[1]} frames")
    if not isinstance(label, (int, np.integer)) or label < 0:
        raise InputError(f"{path}: sample {name!r} label must be a non-negative integer, got {label!r}")
    keypoint = keypoint[:, :frames]
    if not np.isfinite(keypoint).all():
        raise InputError(f"{path}: sample {name!r} keypoint holds non-finite values")
    return keypoint, int(label)


def protocol_splits(splits: dict[str, list[str]], wanted: Sequence[str] | None) -> dict[str, dict[str, str]]:
    """{protocol: {our split: pyskl split}} from pyskl split names; ``wanted`` protocols must exist."""
    protocols: dict[str, dict[str, str]] = {}
    for split in splits:
        match = SPLIT_PATTERN.fullmatch(split)
        if match:
            parts = protocols.setdefault(match.group(1), {})
            ours = PARTS[match.group(2)]
            if ours in parts:
                raise InputError(f"splits {parts[ours]!r} and {split!r} would both become {match.group(1)}/{ours}")
            parts[ours] = split
    if wanted:
        missing = [protocol for protocol in wanted if protocol not in protocols]
        if missing:
            raise InputError(f"protocol {missing[0]!r} has no split (found: {', '.join(sorted(protocols)) or 'none'})")
        protocols = {protocol: protocols[protocol] for protocol in wanted}
    if not protocols:
        raise InputError(f"no split named <protocol>_train / _val / _test among {', '.join(splits)}")
    return protocols


def centre(keypoint: np.ndarray) -> np.ndarray:
    """Subtract joint 2 of person 1's first non-zero frame from every present (person, frame) of (M, T, V, C)."""
    present = keypoint.any(axis=(2, 3))
    first = np.flatnonzero(present[0])
    if len(first) == 0:
        return keypoint
    origin = keypoint[0, first[0], CENTRE_JOINT]
    return np.where(present[..., None, None], keypoint - origin, 0).astype(keypoint.dtype)


def sample_row(keypoint: np.ndarray, length: int, centred: bool) -> np.ndarray:
    """One prepared row (3, length, 25, 2) float32 from keypoints (M, T, 25, 3)."""
    if centred:
        keypoint = centre(keypoint)
    row = np.zeros((3, length, NUM_JOINTS, NUM_PERSONS), dtype=np.float32)
    persons, frames = keypoint.shape[:2]
    row[:, :frames, :, :persons] = keypoint.transpose(3, 1, 2, 0)
    return row


def write_split(root: Path, split: str, names: list[str], annotations: Annotations, length: int, centred: bool) -> None:
    """Write one split, the data streamed row by row, then the labels, the names last (all atomic)."""
    paths = split_paths(root, split)
    with atomic_path(paths["data"], suffix=".npy") as tmp, open(tmp, "wb") as handle:
        writer = NpyWriter(handle, np.float32, (len(names), 3, length, NUM_JOINTS, NUM_PERSONS))
        for name in tqdm(names, desc=f"write {root.name}/{split}", unit="sample"):
            writer.write(sample_row(annotations.keypoints[name], length, centred)[None])
        writer.finish()
    write_npy_atomic(paths["label"], np.array([annotations.labels[name] for name in names], dtype=np.int64))
    write_text_atomic(paths["names"], "".join(f"{name}\n" for name in names))


def prepare(
    pickle_path: str | Path,
    out: str | Path,
    protocols: Sequence[str] | None = None,
    num_class: int | None = None,
    centred: bool = True,
    dataset: str | None = None,
) -> dict[str, dict[str, int]]:
    """Convert the pyskl file to ``OUT/<protocol>``; return {protocol: {split: size}}."""
    annotations = read_annotations(pickle_path, num_class)
    plan = protocol_splits(annotations.splits, protocols)
    length = max(keypoint.shape[1] for keypoint in annotations.keypoints.values())
    dataset = dataset or Path(pickle_path).stem
    sizes = {}
    for protocol, parts in plan.items():
        root = Path(out) / protocol
        root.mkdir(parents=True, exist_ok=True)
        (root / "meta.json").unlink(missing_ok=True)
        for split, source in parts.items():
            write_split(root, split, annotations.splits[source], annotations, length, centred)
        sizes[protocol] = {split: len(annotations.splits[source]) for split, source in parts.items()}
        write_meta(root, f"{dataset}-{protocol}", annotations.num_class, "ntu_rgb_d", sizes[protocol])
    return sizes


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pickle", required=True, help="pyskl annotation file, e.g. ntu120_3danno.pkl")
    parser.add_argument("--out", required=True, help="output folder: one prepared folder per protocol")
    parser.add_argument("--protocols", nargs="+", help="protocols to convert, e.g. xsub xview (default: all)")
    parser.add_argument("--num-class", type=int, help="number of classes (default: the largest label + 1)")
    parser.add_argument("--dataset", help="dataset name for meta.json (default: the pickle's file stem)")
    parser.add_argument("--centre", action=argparse.BooleanOptionalAction, default=True,
                        help="centre on joint 2 of person 1's first frame, as CTR-GCN (default: on)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.num_class is not None and args.num_class <= 0:
        parser.error("--num-class must be positive")
    sizes = prepare(args.pickle, args.out, args.protocols, args.num_class, args.centre, args.dataset)
    for protocol, splits in sizes.items():
        print(f"{Path(args.out) / protocol}: " + ", ".join(f"{split} {count}" for split, count in splits.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
