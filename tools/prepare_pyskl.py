"""Command: a pyskl annotation pickle (3D NTU joints or 2D COCO keypoints) -> our prepared format.

3D: ``ntu60_3danno.pkl``, ``ntu120_3danno.pkl``; 2D: ``ntu60_hrnet.pkl``, ``ntu120_hrnet.pkl``, ``gym_hrnet.pkl``, ...

    python -m tools.prepare_pyskl --pickle FILE --out OUT [--protocols xsub xset] [--num-class K]
                                  [--dataset NAME] [--no-centre] [--no-score] [--strict]

The pickle (pyskl ``tools/data/README.md``) is ``{'split': {name: [frame_dir, ...]}, 'annotations':
[{'frame_dir', 'label', 'keypoint' (M, T, V, C), 'total_frames', ...}]}``; it is read with a restricted
unpickler (tools/safe_pickle.py). 3D files hold the 25 NTU joints (C = 3); 2D files the 17 COCO keypoints
(C = 2) with ``'keypoint_score'`` (M, T, 17) and ``'img_shape'`` (height, width). Each split named
``<protocol>_train`` / ``<protocol>_val`` (or ``_test``) becomes ``OUT/<protocol>/train_*`` / ``test_*``:
data (N, C', T_max, V, 2) float32 with T_max the longest sample of the file, persons padded to 2 with zeros
(a 2D sample with more keeps its first two, as pyskl's ``FormatGCNInput``), names = frame_dir, labels as
given, rows in the split's order; ``meta.json`` names the graph (``ntu_rgb_d`` or ``coco``) and the channels.

- 3D: C' = 3 (x, y, z). Unless ``--no-centre``, samples are centred as CTR-GCN does: origin = joint 2 of
  person 1 in its first non-zero frame.
- 2D: C' = 3 (x, y, score), or 2 (x, y) with ``--no-score``. Unless ``--no-centre``, x and y are mapped to
  [-1, 1] across the image, as pyskl's ``PreNormalize2D``.

Absent frames and persons stay zero. Samples with NaN or infinite values are skipped, named on stderr and
listed in ``OUT/prepare_log.txt``, or stop the run with ``--strict`` (tools/sample_checks.py).
"""
from __future__ import annotations

import argparse
import math
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
from tools.sample_checks import LOG_NAME, check_finite, check_skips, skip_note, write_skip_log

NUM_PERSONS = 2
#: Joint (0-based) whose position in person 1's first non-zero frame becomes the origin (3D, NTU layout).
CENTRE_JOINT = 1
#: pyskl split suffix -> our split name.
PARTS = {"train": "train", "val": "test", "test": "test"}
SPLIT_PATTERN = re.compile(r"(.+)_(train|val|test)")


@dataclass(frozen=True)
class Layout:
    """What a pyskl file holds: ``joints`` joints of ``dims`` coordinates, in the layout of graph ``graph``."""

    graph: str
    joints: int
    dims: int

    @property
    def expected(self) -> str:
        """The keypoint shape of this layout, as error messages give it."""
        persons = f"M<={NUM_PERSONS}" if self.dims == 3 else "M"
        return f"({persons}, T, {self.joints}, {self.dims})"


#: The layouts pyskl files come in, by coordinates per joint.
LAYOUTS = {3: Layout("ntu_rgb_d", 25, 3), 2: Layout("coco", 17, 2)}


@dataclass(frozen=True)
class Sample:
    """One annotation, cut to ``total_frames`` and (2D) two persons: keypoints (M, T, V, dims), the keypoint
    scores (M, T, V) and image size (height, width) of a 2D sample (the size None if the file has none)."""

    keypoint: np.ndarray
    score: np.ndarray | None = None
    image_shape: tuple[float, float] | None = None


@dataclass(frozen=True)
class Annotations:
    """A validated pyskl file: its layout, the kept samples and labels by frame_dir, the split lists without
    the skipped samples, the class count, the skipped samples (name -> reason) and the 2D samples whose
    persons beyond the second were dropped."""

    layout: Layout
    samples: dict[str, Sample]
    labels: dict[str, int]
    splits: dict[str, list[str]]
    num_class: int
    skipped: dict[str, str]
    cut: list[str]


def read_annotations(path: str | Path, num_class: int | None = None) -> Annotations:
    """Read and validate a pyskl annotation pickle (every sample a split refers to is checked).

    A sample with a NaN or infinite value goes to ``skipped``; any other fault is an ``InputError``.
    """
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
    layout = None
    samples: dict[str, Sample] = {}
    labels: dict[str, int] = {}
    skipped: dict[str, str] = {}
    cut: list[str] = []
    for split, names in splits.items():
        if not isinstance(names, list):
            raise InputError(f"{path}: split {split!r} must be a list of frame_dir names")
        for name in names:
            if not isinstance(name, str) or name not in by_name:
                raise InputError(f"{path}: split {split!r} names {name!r}, which has no annotation")
            if name in labels:
                continue
            layout = layout or _layout_of(path, by_name[name])
            sample, labels[name], was_cut = _check_entry(path, by_name[name], layout)
            values = sample.keypoint if sample.score is None else np.concatenate(
                (sample.keypoint, sample.score[..., None]), axis=-1)
            persons, frames, joints, channels = values.shape
            try:
                check_finite(f"{path}: sample {name!r}", values.reshape(-1, joints, channels),
                             np.tile(np.arange(frames), persons))
            except InputError as error:
                skipped[name] = str(error)
                continue
            samples[name] = sample
            if was_cut:
                cut.append(name)
    if not labels:
        raise InputError(f"{path}: the splits name no sample")
    top = max(labels.values())
    if num_class is None:
        num_class = top + 1
    elif top >= num_class:
        culprit = max(labels, key=labels.get)
        raise InputError(f"{path}: sample {culprit!r} has label {top}, outside 0..{num_class - 1}")
    kept = {split: [name for name in names if name in samples] for split, names in splits.items()}
    return Annotations(layout, samples, labels, kept, num_class, skipped, cut)


def _layout_of(path: str | Path, entry: dict) -> Layout:
    """The layout of a file, from the keypoints of its first sample."""
    keypoint = entry.get("keypoint")
    if keypoint is None and "raw_file" in entry:
        raise InputError(f"{path}: sample {entry['frame_dir']!r} keeps its keypoints in a separate file ('raw_file', "
                         "as pyskl's Kinetics-400 annotations do), which is not supported")
    shape = getattr(keypoint, "shape", ())
    if not isinstance(keypoint, np.ndarray) or len(shape) != 4 or shape[3] not in LAYOUTS:
        raise InputError(f"{path}: sample {entry['frame_dir']!r} keypoint must be "
                         f"{' or '.join(layout.expected for layout in LAYOUTS.values())}, got {shape or keypoint!r}")
    return LAYOUTS[shape[3]]


def _check_entry(path: str | Path, entry: dict, layout: Layout) -> tuple[Sample, int, bool]:
    """One annotation validated: the sample cut to ``total_frames`` (and two persons), its label, and whether
    persons were dropped."""
    name = entry["frame_dir"]
    keypoint, label = entry.get("keypoint"), entry.get("label")
    if not isinstance(keypoint, np.ndarray) or not np.issubdtype(keypoint.dtype, np.number):
        raise InputError(f"{path}: sample {name!r} has no numeric 'keypoint' array")
    persons = keypoint.shape[0] if keypoint.ndim == 4 else 0
    too_many = layout.dims == 3 and persons > NUM_PERSONS  # pyskl's 3D files never have more; 2D ones are cut
    if keypoint.ndim != 4 or keypoint.shape[2:] != (layout.joints, layout.dims) or persons < 1 or too_many:
        raise InputError(f"{path}: sample {name!r} keypoint must be {layout.expected}, got {keypoint.shape}")
    frames = entry.get("total_frames", keypoint.shape[1])
    if not isinstance(frames, (int, np.integer)) or not 1 <= frames <= keypoint.shape[1]:
        raise InputError(f"{path}: sample {name!r} total_frames {frames!r} does not fit its {keypoint.shape[1]} frames")
    if not isinstance(label, (int, np.integer)) or label < 0:
        raise InputError(f"{path}: sample {name!r} label must be a non-negative integer, got {label!r}")
    if layout.dims == 3:
        return Sample(keypoint[:, :frames]), int(label), False
    score = entry.get("keypoint_score")
    if not isinstance(score, np.ndarray) or not np.issubdtype(score.dtype, np.number) or \
            score.shape != keypoint.shape[:3]:
        raise InputError(f"{path}: sample {name!r} needs a numeric 'keypoint_score' of shape {keypoint.shape[:3]}, "
                         f"got {getattr(score, 'shape', score)!r}")
    sample = Sample(keypoint[:NUM_PERSONS, :frames], score[:NUM_PERSONS, :frames], _image_shape(path, name, entry))
    return sample, int(label), persons > NUM_PERSONS


def _image_shape(path: str | Path, name: str, entry: dict) -> tuple[float, float] | None:
    """The sample's ``img_shape`` (height, width), or None if it has none."""
    shape = entry.get("img_shape")
    if shape is None:
        return None
    sides = [_length(side) for side in shape] if isinstance(shape, (tuple, list)) else []
    if len(sides) != 2 or None in sides:
        raise InputError(f"{path}: sample {name!r} img_shape must be (height, width) in pixels, got {shape!r}")
    return sides[0], sides[1]


def _length(side: object) -> float | None:
    """``side`` as a positive finite number of pixels, or None."""
    if not isinstance(side, (int, float, np.integer, np.floating)) or isinstance(side, bool):
        return None
    try:
        value = float(side)
    except OverflowError:
        return None
    return value if math.isfinite(value) and value > 0 else None


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


def image_normalise(keypoint: np.ndarray, image_shape: tuple[float, float]) -> np.ndarray:
    """Pixel coordinates (M, T, V, 2) mapped to [-1, 1] across an image of ``image_shape`` (height, width), as
    pyskl's ``PreNormalize2D``; absent (all-zero) (person, frame)s stay zero."""
    height, width = image_shape
    half = np.array([width / 2, height / 2])
    present = keypoint.any(axis=(2, 3))
    return np.where(present[..., None, None], (keypoint - half) / half, 0)


def channel_names(layout: Layout, score: bool) -> tuple[str, ...]:
    """The channels written for ``layout`` (``meta.json``'s ``channels``)."""
    return ("x", "y", "z") if layout.dims == 3 else ("x", "y", "score") if score else ("x", "y")


def sample_row(sample: Sample, length: int, joints: int, centred: bool, score: bool) -> np.ndarray:
    """One prepared row (C', length, V, 2) float32 from a sample."""
    keypoint = sample.keypoint
    if sample.score is None:
        channels = centre(keypoint) if centred else keypoint
    else:
        channels = image_normalise(keypoint, sample.image_shape) if centred else keypoint
        if score:
            channels = np.concatenate((channels, sample.score[..., None]), axis=-1)
    row = np.zeros((channels.shape[-1], length, joints, NUM_PERSONS), dtype=np.float32)
    persons, frames = channels.shape[:2]
    row[:, :frames, :, :persons] = channels.transpose(3, 1, 2, 0)
    return row


def write_split(root: Path, split: str, names: list[str], annotations: Annotations, length: int, centred: bool,
                score: bool) -> None:
    """Write one split, the data streamed row by row, then the labels, the names last (all atomic)."""
    paths = split_paths(root, split)
    layout = annotations.layout
    shape = (len(names), len(channel_names(layout, score)), length, layout.joints, NUM_PERSONS)
    with atomic_path(paths["data"], suffix=".npy") as tmp, open(tmp, "wb") as handle:
        writer = NpyWriter(handle, np.float32, shape)
        for name in tqdm(names, desc=f"write {root.name}/{split}", unit="sample"):
            writer.write(sample_row(annotations.samples[name], length, layout.joints, centred, score)[None])
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
    score: bool = True,
    strict: bool = False,
) -> tuple[dict[str, dict[str, int]], Annotations]:
    """Convert the pyskl file to ``OUT/<protocol>``; return {protocol: {split: size}} and the annotations read.

    Every check (including the skipped samples under ``strict``) runs before anything is written.
    """
    annotations = read_annotations(pickle_path, num_class)
    plan = protocol_splits(annotations.splits, protocols)
    layout = annotations.layout
    if not score and layout.dims == 3:
        raise InputError(f"--no-score: {pickle_path} holds 3D keypoints, which have no scores")
    if centred and layout.dims == 2:
        unsized = [name for name, sample in annotations.samples.items() if sample.image_shape is None]
        if unsized:
            raise InputError(f"{pickle_path}: sample {unsized[0]!r} has no 'img_shape' (height, width) to normalise "
                             "its 2D keypoints by (--no-centre keeps the pixel coordinates)")
    check_skips(annotations.skipped, strict,
                empty=None if annotations.samples else f"{pickle_path}: no sample with finite keypoints")
    length = max(sample.keypoint.shape[1] for sample in annotations.samples.values())
    dataset = dataset or Path(pickle_path).stem
    write_skip_log(out, annotations.skipped)
    sizes = {}
    for protocol, parts in plan.items():
        root = Path(out) / protocol
        root.mkdir(parents=True, exist_ok=True)
        (root / "meta.json").unlink(missing_ok=True)
        for split, source in parts.items():
            write_split(root, split, annotations.splits[source], annotations, length, centred, score)
        sizes[protocol] = {split: len(annotations.splits[source]) for split, source in parts.items()}
        write_meta(root, f"{dataset}-{protocol}", annotations.num_class, layout.graph, sizes[protocol],
                   channel_names(layout, score))
    return sizes, annotations


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pickle", required=True,
                        help="pyskl annotation file, e.g. ntu120_3danno.pkl or ntu60_hrnet.pkl")
    parser.add_argument("--out", required=True, help="output folder: one prepared folder per protocol")
    parser.add_argument("--protocols", nargs="+", help="protocols to convert, e.g. xsub xview (default: all)")
    parser.add_argument("--num-class", type=int, help="number of classes (default: the largest label + 1)")
    parser.add_argument("--dataset", help="dataset name for meta.json (default: the pickle's file stem)")
    parser.add_argument("--centre", action=argparse.BooleanOptionalAction, default=True,
                        help="3D: centre on joint 2 of person 1's first frame, as CTR-GCN; 2D: map x, y to [-1, 1] "
                             "across the image, as pyskl (default: on)")  # fmt: skip
    parser.add_argument("--no-score", dest="score", action="store_false",
                        help="2D files: write x, y only, without the keypoint scores (default: off, the scores are "
                             "the third channel)")  # fmt: skip
    parser.add_argument("--strict", action="store_true",
                        help="stop with an error, writing nothing, if any sample holds NaN or infinite values "
                             f"(default: off, such samples are skipped and listed in OUT/{LOG_NAME})")  # fmt: skip
    args = parser.parse_args(argv)
    if args.num_class is not None and args.num_class <= 0:
        parser.error("--num-class must be positive")
    sizes, annotations = prepare(args.pickle, args.out, args.protocols, args.num_class, args.centre, args.dataset,
                                 args.score, args.strict)
    for protocol, splits in sizes.items():
        print(f"{Path(args.out) / protocol}: " + ", ".join(f"{split} {count}" for split, count in splits.items()))
    if annotations.cut:
        print(f"{len(annotations.cut)} sample(s) had more than {NUM_PERSONS} persons: kept the first {NUM_PERSONS}, "
              f"e.g. {annotations.cut[0]}")
    print(skip_note(args.out, annotations.skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
