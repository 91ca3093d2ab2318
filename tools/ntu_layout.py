"""NTU sample layout: centring, padding to the person-slot layout, benchmark splits and npz export.

Rules of the reference pipeline (CTR-GCN ``seq_transformation.py``): the origin is joint 2 (middle of
the spine) of actor 1 in its first non-zero frame; it is subtracted from every coordinate and frames
where an actor was missing (coordinate sum 0) are zeroed again. Sequences are zero-padded in time; a
single actor leaves the second slot empty (NTU60) or is copied into it (NTU120). Rows of a split are
grouped by performer / camera / setup in the order of the benchmark's id list, file order within a
group.
"""
from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from engine.errors import InputError
from engine.fileio import atomic_path
from tools.ntu_denoise import ACTOR_WIDTH
from tools.ntu_raw import NUM_JOINTS

MIN_FRAMES = 300
NUM_PERSONS = 2
NAME_PATTERN = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
NAME_FIELDS = ("setup", "camera", "performer", "replication", "action")

_NTU60_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
_NTU120_XSUB_TRAIN = _NTU60_XSUB_TRAIN + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94,
    95, 97, 98, 100, 103,
)  # fmt: skip


@dataclass(frozen=True)
class Dataset:
    """One NTU release: its classes, setups, duplication rule and protocols."""

    name: str
    num_class: int
    max_setup: int
    duplicate_single: bool
    protocols: dict[str, Protocol]


@dataclass(frozen=True)
class Protocol:
    """A benchmark split: the name field it groups on and its train / test ids in row-group order."""

    field: str
    train: tuple[int, ...]
    test: tuple[int, ...]
    npz_name: str


DATASETS = {
    "ntu60": Dataset("ntu60", 60, 17, False, {
        "xsub": Protocol("performer", _NTU60_XSUB_TRAIN,
                         tuple(p for p in range(1, 41) if p not in _NTU60_XSUB_TRAIN), "NTU60_CS.npz"),
        "xview": Protocol("camera", (2, 3), (1,), "NTU60_CV.npz"),
    }),
    "ntu120": Dataset("ntu120", 120, 32, True, {
        "xsub": Protocol("performer", _NTU120_XSUB_TRAIN,
                         tuple(p for p in range(1, 107) if p not in _NTU120_XSUB_TRAIN), "NTU120_CSub.npz"),
        "xset": Protocol("setup", tuple(range(2, 33, 2)), tuple(range(1, 33, 2)), "NTU120_CSet.npz"),
    }),
}  # fmt: skip


def parse_name(name: str) -> dict[str, int] | None:
    """The five ids of an NTU sample name ``SsssCcccPpppRrrrAaaa``, or None if it is not one."""
    match = NAME_PATTERN.fullmatch(name)
    return None if match is None else dict(zip(NAME_FIELDS, map(int, match.groups())))


def split_rows(ids: dict[str, np.ndarray], protocol: Protocol) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the train and test splits, given per-sample id arrays in file order."""
    values = ids[protocol.field]
    return _grouped(values, protocol.train), _grouped(values, protocol.test)


def _grouped(values: np.ndarray, group_order: tuple[int, ...]) -> np.ndarray:
    rank = np.full(max(int(values.max(initial=0)), max(group_order)) + 1, -1, dtype=np.int64)
    rank[list(group_order)] = np.arange(len(group_order))
    members = np.flatnonzero(rank[values] >= 0)
    return members[np.argsort(rank[values[members]], kind="stable")]


def centre(joints: np.ndarray, name: str) -> np.ndarray:
    """Translate the denoised sequence ``name`` (T, 75 or 150) so that actor 1's first joint 2 is the origin.

    With two actors, frames where an actor is missing stay zero; a copy is returned.
    """
    actor1 = joints[:, :ACTOR_WIDTH]
    present = np.flatnonzero((actor1 != 0).any(axis=1))
    if present.size == 0:
        raise InputError(f"sample {name}: actor 1 has no non-zero frame")
    centred = joints - np.tile(joints[present[0], 3:6], joints.shape[1] // 3)
    if joints.shape[1] == NUM_PERSONS * ACTOR_WIDTH:
        for slot in range(NUM_PERSONS):
            columns = slice(slot * ACTOR_WIDTH, (slot + 1) * ACTOR_WIDTH)
            centred[joints[:, columns].sum(axis=1) == 0, columns] = 0
    return centred


def person_slots(
    joints: np.ndarray, colors: np.ndarray, length: int, duplicate_single: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Pad one sample to ``length`` frames in our layout.

    ``joints`` (T, 75 A) and ``colors`` (T, A, 25, 2) for A = 1 or 2 actors become data (3, length, 25, 2)
    and colour (length, 2, 25, 2); a single actor fills the second slot too if ``duplicate_single``.
    """
    frames, actors = colors.shape[:2]
    data = np.zeros((3, length, NUM_JOINTS, NUM_PERSONS), dtype=np.float32)
    color = np.zeros((length, NUM_PERSONS, NUM_JOINTS, 2), dtype=np.float32)
    slots = NUM_PERSONS if actors == 1 and duplicate_single else actors
    xyz = joints.reshape(frames, actors, NUM_JOINTS, 3).transpose(3, 0, 2, 1)
    data[:, :frames, :, :slots] = xyz
    color[:frames, :slots] = colors
    return data, color


def ctrgcn_rows(data: np.ndarray) -> np.ndarray:
    """Our rows (N, 3, T, 25, 2) in the CTR-GCN npz layout (N, T, 150) = (T, person, joint, xyz)."""
    n, channels, frames, joints, persons = data.shape
    return data.transpose(0, 2, 4, 3, 1).reshape(n, frames, persons * joints * channels)


class NpyWriter:
    """Append rows to an ``.npy`` file through an open binary handle: header first, rows as they come."""

    def __init__(self, handle: BinaryIO, dtype: np.dtype, shape: tuple[int, ...]):
        self.handle, self.dtype, self.shape, self.rows = handle, np.dtype(dtype), tuple(shape), 0
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        np.lib.format.write_array_header_1_0(handle, header)

    def write(self, rows: np.ndarray) -> None:
        """Append ``rows`` (k, *shape[1:])."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:] or self.rows + len(rows) > self.shape[0]:
            raise ValueError(f"rows of shape {rows.shape} do not fit an array of shape {self.shape} at row {self.rows}")
        self.handle.write(rows.tobytes())
        self.rows += len(rows)

    def finish(self) -> None:
        """Check that every row was written."""
        if self.rows != self.shape[0]:
            raise ValueError(f"wrote {self.rows} rows of an array of shape {self.shape}")


def read_npy_chunks(path: str | os.PathLike, chunk_rows: int) -> Iterator[np.ndarray]:
    """Yield the rows of a C-ordered ``.npy`` file ``chunk_rows`` at a time, with plain reads."""
    view = np.load(path, mmap_mode="r")
    shape, dtype, offset = view.shape, view.dtype, view.offset
    del view
    row = int(np.prod(shape[1:], dtype=np.int64))
    with open(path, "rb") as handle:
        handle.seek(offset)
        for start in range(0, shape[0], chunk_rows):
            count = min(chunk_rows, shape[0] - start)
            yield np.fromfile(handle, dtype=dtype, count=count * row).reshape((count, *shape[1:]))


def write_ctrgcn_npz(
    path: str | os.PathLike, splits: dict[str, tuple[Path, np.ndarray]], num_class: int, chunk_rows: int = 256
) -> None:
    """Write a CTR-GCN npz (``x_train``, ``y_train``, ``x_test``, ``y_test``) from our split files.

    ``splits`` maps ``train`` / ``test`` to (data ``.npy`` path, 0-based labels). ``x`` is streamed from
    the data file in row chunks into the (uncompressed, zip64) archive; ``y`` is one-hot float64.
    """
    with atomic_path(path, suffix=".npz") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for split, (data_path, labels) in splits.items():
            n, channels, frames, joints, persons = np.load(data_path, mmap_mode="r").shape
            x_chunks = map(ctrgcn_rows, read_npy_chunks(data_path, chunk_rows))
            _zip_npy(archive, f"x_{split}.npy", np.float32, (n, frames, persons * joints * channels), x_chunks)
            one_hot = np.zeros((len(labels), num_class))
            one_hot[np.arange(len(labels)), labels] = 1
            _zip_npy(archive, f"y_{split}.npy", one_hot.dtype, one_hot.shape, [one_hot])


def _zip_npy(
    archive: zipfile.ZipFile, member: str, dtype: np.dtype, shape: tuple[int, ...], chunks: Iterable[np.ndarray]
) -> None:
    with archive.open(member, "w", force_zip64=True) as handle:
        writer = NpyWriter(handle, dtype, shape)
        for chunk in chunks:
            writer.write(chunk)
        writer.finish()
