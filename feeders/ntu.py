"""The NTU RGB+D dataset: CTR-GCN npz or prepared folder in, cropped / rotated / bone / motion samples out."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset

from engine.errors import InputError
from feeders.bone_pairs import bone_pairs
from feeders.class_names import ntu_class_names, prepared_class_names
from feeders.skeleton_store import check_label_path, open_data, open_split
from feeders.subset import selected_rows
from feeders.transforms import crop_resize, random_rotation, sample_rng, to_bone, to_motion, valid_frame_count

#: Largest rotation angle per axis, radians (docs/method.md §6).
ROTATION_THETA = 0.3
#: Samples kept by ``debug``.
DEBUG_SAMPLES = 100


class NTUFeeder(Dataset):
    """NTU skeleton samples (C, window, V, M) float32 with their label and index.

    Per sample: crop the valid frames and resize them to ``window_size``, optionally rotate, then take
    bones and / or motion. Random draws come from a generator seeded by (seed, epoch, index), so a sample
    does not depend on worker count or order, is reproducible, and changes with ``set_epoch``. The data
    array stays memory-mapped (``use_mmap``) and is reopened, not pickled, in DataLoader workers.
    ``names_file`` keeps only the samples it lists and ``exclude_names_file`` drops those it lists
    (``feeders/subset.py``; e.g. a held-out part of the training split).
    """

    def __init__(
        self,
        data_path: str,
        split: str = "train",
        window_size: int = 64,
        p_interval: Sequence[float] = (0.5, 1.0),
        random_rot: bool = False,
        bone: bool = False,
        vel: bool = False,
        debug: bool = False,
        use_mmap: bool = True,
        random_choose: bool = False,
        random_shift: bool = False,
        random_move: bool = False,
        normalization: bool = False,
        label_path: str | None = None,
        names_file: str | None = None,
        exclude_names_file: str | None = None,
        seed: int = 0,
    ) -> None:
        unsupported = {
            "random_choose": random_choose,
            "random_shift": random_shift,
            "random_move": random_move,
            "normalization": normalization,
        }
        for key, value in unsupported.items():
            if value:
                raise InputError(f"feeder argument {key}={value!r} is not supported by mmcl (set it to false)")
        check_label_path(label_path)
        self.p_interval = _checked_p_interval(p_interval)
        if type(window_size) is not int or window_size <= 0:
            raise InputError(f"feeder argument window_size must be a positive integer, got {window_size!r}")
        if type(seed) is not int or seed < 0:
            raise InputError(f"feeder seed must be a non-negative integer, got {seed!r}")
        self.data_path, self.split, self.use_mmap = str(data_path), split, use_mmap
        self.window_size, self.random_rot, self.bone, self.vel, self.seed = window_size, random_rot, bone, vel, seed
        self.epoch = 0

        store = open_split(data_path, split, use_mmap)
        rows = selected_rows(store.names, names_file, exclude_names_file, data_path, split)
        self._rows = rows[:DEBUG_SAMPLES] if debug else rows
        self.sample_name: list[str] = [store.names[row] for row in self._rows]
        self.label: np.ndarray = store.labels[self._rows]
        self.num_class: int | None = store.num_class
        _, self.in_channels, _, self.num_point, self.num_person = store.shape
        self._data = store.data
        self.score = bool(store.channels) and store.channels[-1] == "score"  # a keypoint confidence channel last
        if random_rot and self.in_channels - self.score not in (2, 3):
            raise InputError(f"{data_path}: random_rot needs 2 or 3 coordinates per joint, the data has "
                             f"{self.in_channels - self.score}")
        graph = store.graph or "ntu_rgb_d"
        known_classes = self.num_class or int(self.label.max(initial=-1)) + 1
        self.class_names = prepared_class_names(data_path, known_classes) \
            or (ntu_class_names(self.num_class) if graph == "ntu_rgb_d" else None)
        self._pairs = bone_pairs(graph) if bone else None
        if self._pairs is not None and self._pairs.max() >= self.num_point:
            raise InputError(f"{data_path}: graph {graph!r} bones need more joints than the {self.num_point} given")

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch`` (call before each epoch's DataLoader iterator is made)."""
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int, int]:
        if not 0 <= index < len(self.label):
            raise IndexError(f"sample index {index} out of range for {len(self.label)} samples")
        if self._data is None:
            self._data = open_data(self.data_path, self.split, self.use_mmap)
        sample = self._data[self._rows[index]]
        needs_rng = len(self.p_interval) == 2 or self.random_rot
        rng = sample_rng(self.seed, self.epoch, index) if needs_rng else None
        x = crop_resize(sample, valid_frame_count(sample), self.p_interval, self.window_size, rng)
        if self.random_rot:
            x = random_rotation(x, ROTATION_THETA, rng, self.score)
        if self._pairs is not None:
            x = to_bone(x, self._pairs, self.score)
        if self.vel:
            x = to_motion(x, self.score)
        return x, int(self.label[index]), index

    def __getstate__(self) -> dict:
        """Pickle without the sample array; each process reopens (maps) it on first use."""
        state = self.__dict__.copy()
        state["_data"] = None
        return state


def _checked_p_interval(p_interval: Sequence[float]) -> tuple[float, ...]:
    """``p_interval`` as a tuple of one value (test crop) or an ordered pair (train crop), all in (0, 1]."""
    message = f"feeder argument p_interval must be [p] or [low, high] with 0 < low <= high <= 1, got {p_interval!r}"
    try:
        values = tuple(float(p) for p in p_interval)
    except (TypeError, ValueError):
        raise InputError(message) from None
    if len(values) not in (1, 2) or not all(0 < p <= 1 for p in values) or values != tuple(sorted(values)):
        raise InputError(message)
    return values
