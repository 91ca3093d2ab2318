"""The Northwestern-UCLA dataset: JSON folder or prepared folder in, view-augmented normalised samples out."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from engine.errors import InputError
from engine.fileio import read_json
from feeders.bone_pairs import bone_pairs
from feeders.class_names import UCLA_CLASSES
from feeders.prepared import split_paths
from feeders.skeleton_store import check_label_path, open_split
from feeders.subset import selected_rows
from feeders.transforms import (
    minmax_normalise,
    sample_rng,
    to_bone,
    to_motion,
    ucla_sample_frames,
    ucla_view_transform,
    valid_frame_count,
)

NUM_JOINTS = 20
NUM_CLASS = 10
#: Camera views of each split of the JSON release (cross-view protocol).
SPLIT_VIEWS = {"train": (1, 2), "test": (3,)}
#: Samples of each split in the standard release (views 1 + 2 and view 3).
STANDARD_COUNTS = {"train": 1020, "test": 464}
#: Training augmentation: view angles drawn from [-MAX_ANGLE, MAX_ANGLE] degrees, scale from SCALE_RANGE.
MAX_ANGLE = 60
SCALE_RANGE = (0.5, 1.5)
#: Joint whose first-frame position becomes the origin (joint 2, 0-based 1).
CENTRE_JOINT = 1
DEBUG_SAMPLES = 100

_FILE_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)_v(\d+)\.json")


def count_note(root: Path, split: str, count: int) -> str:
    """A log line on the split's sample count: as in the standard release, or a warning with the difference."""
    standard = STANDARD_COUNTS.get(split)
    if standard is None or count == standard:
        return f"NW-UCLA {split} split of {root}: {count} samples, as in the standard release"
    return (f"warning: NW-UCLA {split} split of {root}: {count} samples, the standard release has {standard} "
            f"({abs(count - standard)} {'more' if count > standard else 'fewer'}): check the folder")


class UCLAFeeder(Dataset):
    """NW-UCLA samples (3, window, 20, 1) float32 with their 0-based label and index.

    Per sample: centre on joint 2 of frame 0; for the ``train`` split a random view rotation and scale;
    per-axis min-max normalisation to [-1, 1]; ``window_size`` frames (random sorted draws for ``train``,
    uniform otherwise); then bones and / or motion. ``repeat`` lists the samples that many times per epoch.
    Random draws come from a generator seeded by (seed, epoch, index). ``augment`` (default: the split is
    ``train``) switches the random view, scale and frame draws on. ``names_file`` / ``exclude_names_file``
    keep / drop the samples they list (``feeders/subset.py``).
    """

    def __init__(
        self,
        data_path: str,
        split: str = "train",
        window_size: int = 52,
        repeat: int = 1,
        bone: bool = False,
        vel: bool = False,
        debug: bool = False,
        seed: int = 0,
        label_path: str | None = None,
        names_file: str | None = None,
        exclude_names_file: str | None = None,
        augment: bool | None = None,
    ) -> None:
        check_label_path(label_path)
        for key, value in {"window_size": window_size, "repeat": repeat}.items():
            if type(value) is not int or value <= 0:
                raise InputError(f"feeder argument {key} must be a positive integer, got {value!r}")
        if type(seed) is not int or seed < 0:
            raise InputError(f"feeder seed must be a non-negative integer, got {seed!r}")
        root = Path(data_path)
        if is_prepared(root, split):
            sequences, labels, names = _read_prepared(root, split)
        else:
            sequences, labels, names = read_json_folder(root, split)
        rows = selected_rows(names, names_file, exclude_names_file, root, split)
        rows = rows[:DEBUG_SAMPLES] if debug else rows
        self.notes = [count_note(root, split, len(names))]
        self.sample_name: list[str] = [names[row] for row in rows]
        self.label = np.asarray(labels, dtype=np.int64)[rows]
        self._sequences = [sequences[row] for row in rows]
        self.num_class, self.num_point, self.num_person, self.in_channels = NUM_CLASS, NUM_JOINTS, 1, 3
        self.class_names = list(UCLA_CLASSES)
        self.split, self.window_size, self.repeat, self.seed, self.vel = split, window_size, repeat, seed, vel
        self.augment = split == "train" if augment is None else bool(augment)
        self._pairs = bone_pairs("ucla") if bone else None
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch`` (call before each epoch's DataLoader iterator is made)."""
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._sequences) * self.repeat

    def __getitem__(self, index: int) -> tuple[np.ndarray, int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"sample index {index} out of range for {len(self)} samples")
        row = index % len(self._sequences)
        seq = self._sequences[row]
        seq = seq - seq[0, CENTRE_JOINT]
        rng = None
        if self.augment:
            rng = sample_rng(self.seed, self.epoch, index)
            agx, agy = rng.integers(-MAX_ANGLE, MAX_ANGLE + 1, size=2)
            seq = ucla_view_transform(seq, agx, agy, rng.uniform(*SCALE_RANGE))
        seq = minmax_normalise(seq)[ucla_sample_frames(len(seq), self.window_size, rng)]
        x = np.ascontiguousarray(seq.transpose(2, 0, 1)[..., None], dtype=np.float32)
        if self._pairs is not None:
            x = to_bone(x, self._pairs)
        if self.vel:
            x = to_motion(x)
        return x, int(self.label[row]), index


def is_prepared(root: Path, split: str) -> bool:
    """A prepared folder has the split's data file or a ``meta.json``; otherwise it holds JSON samples."""
    return split_paths(root, split)["data"].is_file() or (root / "meta.json").is_file()


def _read_prepared(root: Path, split: str) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Sequences (T, 20, 3) float64 trimmed to their valid frames, labels and names of a prepared split."""
    store = open_split(root, split, use_mmap=True)
    _, channels, _, joints, persons = store.shape
    if (channels, joints, persons) != (3, NUM_JOINTS, 1):
        raise InputError(
            f"{split_paths(root, split)['data']}: NW-UCLA data must be (N, 3, T, {NUM_JOINTS}, 1), got {store.shape}"
        )
    sequences = []
    for name, sample in zip(store.names, store.data):
        valid = valid_frame_count(sample)
        if valid == 0:
            raise InputError(f"{root}: sample {name!r} of split {split!r} has no frames")
        sequences.append(np.asarray(sample[:, :valid, :, 0], dtype=np.float64).transpose(1, 2, 0))
    return sequences, store.labels, store.names


def read_json_folder(root: Path, split: str) -> tuple[list[np.ndarray], list[int], list[str]]:
    """Sequences (T, 20, 3) float64, 0-based labels and names of the NW-UCLA JSON files of ``split``."""
    files = json_files(root, split)
    sequences, labels = zip(*(read_json_sample(path) for path in files))
    return list(sequences), list(labels), [path.stem for path in files]


def json_files(root: Path, split: str) -> list[Path]:
    """The NW-UCLA JSON files of ``split`` in ``root``, in name order."""
    if not root.is_dir():
        raise InputError(f"{root}: not found (data_path must be a folder of NW-UCLA JSON files or a prepared folder)")
    if split not in SPLIT_VIEWS:
        raise InputError(f"{root}: NW-UCLA JSON splits are {', '.join(SPLIT_VIEWS)}, not {split!r}")
    files = sorted(path for path in root.iterdir() if _FILE_NAME.fullmatch(path.name))
    if not files:
        raise InputError(f"{root}: no NW-UCLA files named aAA_sSS_eEE_vVV.json")
    views = SPLIT_VIEWS[split]
    files = [path for path in files if int(_FILE_NAME.fullmatch(path.name).group(4)) in views]
    if not files:
        raise InputError(f"{root}: no NW-UCLA file of view(s) {views} for split {split!r}")
    return files


def read_json_sample(path: Path) -> tuple[np.ndarray, int]:
    """One JSON sample: its skeletons (T, 20, 3) float64 and its 0-based label."""
    content = read_json(path)
    if not isinstance(content, dict) or "skeletons" not in content:
        raise InputError(f"{path}: no 'skeletons' entry")
    try:
        skeletons = np.asarray(content["skeletons"], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{path}: 'skeletons' must be a numeric [T][{NUM_JOINTS}][3] array") from None
    if skeletons.ndim != 3 or skeletons.shape[1:] != (NUM_JOINTS, 3) or len(skeletons) == 0:
        raise InputError(f"{path}: 'skeletons' must be [T][{NUM_JOINTS}][3] with T >= 1, got shape {skeletons.shape}")
    label = content.get("label")
    if type(label) is not int or not 1 <= label <= NUM_CLASS:
        raise InputError(f"{path}: 'label' must be an integer in 1..{NUM_CLASS}, got {label!r}")
    return skeletons, label - 1
