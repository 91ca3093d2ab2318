"""Reading skeleton splits from disk, without copying the big array (docs/data_format.md).

Two layouts: our prepared folder (``<split>_data.npy`` memory-mapped, labels, names, optional
``meta.json``) and the CTR-GCN ``.npz`` (``x_<split>`` (N, T, 150), one-hot ``y_<split>``), whose
uncompressed members are memory-mapped in place and transposed to (C, T, V, M) one sample at a time.
"""
from __future__ import annotations

import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import CORRUPT_FILE_ERRORS, InputError
from engine.fileio import one_line, read_json, read_text
from feeders.prepared import checked_channels, split_paths

#: (persons, joints, coordinates) of one frame row of a CTR-GCN npz.
NPZ_FRAME_LAYOUT = (2, 25, 3)

_ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")


class NpzSkeletons:
    """Rows of a CTR-GCN ``x_<split>`` array (N, T, M·V·C), each seen as (C, T, V, M) without a copy."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        persons, joints, coords = NPZ_FRAME_LAYOUT
        self.shape = (len(rows), coords, rows.shape[1], joints, persons)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> np.ndarray:
        frames = self.rows[index].reshape(self.shape[2], *NPZ_FRAME_LAYOUT)
        return frames.transpose(3, 0, 2, 1)


@dataclass(frozen=True)
class SkeletonSplit:
    """One split: ``data[i]`` is sample ``i`` as (C, T, V, M); ``labels`` 0-based int64; one name per row."""

    data: np.ndarray | NpzSkeletons
    labels: np.ndarray
    names: list[str]
    num_class: int | None
    graph: str | dict | None  # meta.json's layout: a graph name or an edge list (docs/custom_skeletons.md)
    dataset: str | None = None  # meta.json's dataset name (e.g. "ntu120-xsub", "utd_mhad-zeroshot")
    channels: tuple[str, ...] | None = None  # meta.json's channel names, e.g. ("x", "y", "score")

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        """(N, C, T, V, M) of the data."""
        return tuple(self.data.shape)


def check_label_path(label_path: str | None) -> None:
    """Refuse a ``label_path``: mmcl reads the labels from ``data_path`` itself."""
    if label_path is not None:
        raise InputError(
            f"label_path {label_path!r} is not used by mmcl: labels are read from data_path (set label_path to null)"
        )


def open_split(data_path: str | os.PathLike, split: str, use_mmap: bool = True) -> SkeletonSplit:
    """Open ``split`` of a CTR-GCN ``.npz`` file or of a prepared folder, validated."""
    path = _existing_data_path(data_path)
    return (_open_prepared if path.is_dir() else _open_npz)(path, split, use_mmap)


def open_data(data_path: str | os.PathLike, split: str, use_mmap: bool = True) -> np.ndarray | NpzSkeletons:
    """Only the sample array of ``split`` (what a DataLoader worker reopens), validated like ``open_split``."""
    path = _existing_data_path(data_path)
    if path.is_dir():
        return _prepared_data(split_paths(path, split)["data"], split, use_mmap)
    return _npz_data(path, split, use_mmap)


def _existing_data_path(data_path: str | os.PathLike) -> Path:
    path = Path(data_path)
    if path.is_dir() or path.is_file() and path.suffix == ".npz":
        return path
    problem = "neither a folder nor a .npz file" if path.exists() else "not found"
    raise InputError(f"{path}: {problem} (data_path must be a CTR-GCN .npz file or a prepared dataset folder)")


def _open_prepared(root: Path, split: str, use_mmap: bool) -> SkeletonSplit:
    paths = split_paths(root, split)
    for kind in ("data", "label", "names"):
        if not paths[kind].is_file():
            raise InputError(
                f"{paths[kind]}: missing; prepared split {split!r} needs {split}_data.npy, {split}_label.npy "
                f"and {split}_names.txt in {root}"
            )
    data = _prepared_data(paths["data"], split, use_mmap)
    labels = load_npy(paths["label"], None)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{paths['label']}: labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    names = read_text(paths["names"]).splitlines()
    if not len(data) == len(labels) == len(names):
        odd = paths["label"] if len(labels) != len(data) else paths["names"]
        raise InputError(
            f"{odd}: split {split!r} has {len(data)} data rows, {len(labels)} labels and {len(names)} names"
        )
    meta = _read_meta(root / "meta.json")
    num_class = meta.get("num_class")
    _check_labels(labels, num_class, paths["label"])
    channels = checked_channels(meta.get("channels"), data.shape[1], root / "meta.json")
    return SkeletonSplit(data, labels.astype(np.int64), names, num_class, meta.get("graph"), meta.get("dataset"),
                         channels)


def _prepared_data(path: Path, split: str, use_mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: missing; prepared split {split!r} needs it")
    data = load_npy(path, "r" if use_mmap else None)
    if data.ndim != 5 or not np.issubdtype(data.dtype, np.floating):
        raise InputError(f"{path}: data must be a float (N, C, T, V, M) array, got {data.dtype} {data.shape}")
    return data


def load_npy(path: str | os.PathLike, mmap_mode: str | None = None) -> np.ndarray:
    """A ``.npy`` array (memory-mapped with ``mmap_mode``, pickles refused); corruption is one ``InputError``."""
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except CORRUPT_FILE_ERRORS as error:
        raise InputError(f"{path}: not a readable .npy array ({one_line(error)})") from None


def _read_meta(path: Path) -> dict:
    if not path.is_file():
        return {}
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise InputError(f"{path}: expected a JSON object")
    num_class = meta.get("num_class")
    if num_class is not None and (type(num_class) is not int or num_class <= 0):
        raise InputError(f"{path}: 'num_class' must be a positive integer, got {num_class!r}")
    return meta


def _check_labels(labels: np.ndarray, num_class: int | None, source: Path) -> None:
    bad = labels < 0 if num_class is None else (labels < 0) | (labels >= num_class)
    if bad.any():
        row = int(np.argmax(bad))
        allowed = "non-negative" if num_class is None else f"in [0, {num_class})"
        raise InputError(f"{source}: label {labels[row]} at row {row} is not {allowed}")


def _open_npz(path: Path, split: str, use_mmap: bool) -> SkeletonSplit:
    data = _npz_data(path, split, use_mmap)
    onehot = _npz_member(path, f"y_{split}", split, use_mmap=False)
    if onehot.ndim != 2 or len(onehot) != len(data):
        raise InputError(f"{path}: 'y_{split}' must be one-hot ({len(data)}, K), got shape {onehot.shape}")
    empty = np.flatnonzero(onehot.max(axis=1, initial=0) <= 0)
    if len(empty):
        raise InputError(f"{path}: 'y_{split}' row {empty[0]} has no positive entry")
    labels = onehot.argmax(axis=1).astype(np.int64)
    names = [f"{split}_{i}" for i in range(len(labels))]
    return SkeletonSplit(data, labels, names, onehot.shape[1], "ntu_rgb_d")


def _npz_data(path: Path, split: str, use_mmap: bool) -> NpzSkeletons:
    rows = _npz_member(path, f"x_{split}", split, use_mmap)
    if rows.ndim != 3 or rows.shape[2] != np.prod(NPZ_FRAME_LAYOUT) or not np.issubdtype(rows.dtype, np.floating):
        raise InputError(
            f"{path}: 'x_{split}' must be a float (N, T, {np.prod(NPZ_FRAME_LAYOUT)}) array, "
            f"got {rows.dtype} {rows.shape}"
        )
    return NpzSkeletons(rows)


def _npz_member(path: Path, key: str, split: str, use_mmap: bool) -> np.ndarray:
    """Array ``key`` of the npz: memory-mapped in place when stored uncompressed and ``use_mmap``, else read."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [name.removesuffix(".npy") for name in archive.namelist()]
            if key not in members:
                raise InputError(f"{path}: no {key!r} array for split {split!r} (has: {', '.join(members)})")
            info = archive.getinfo(f"{key}.npy")
        if use_mmap and info.compress_type == zipfile.ZIP_STORED:
            mapped = _map_stored_member(path, info)
            if mapped is not None:
                return mapped
        with np.load(path, allow_pickle=False) as archive:
            return archive[key]
    except CORRUPT_FILE_ERRORS as error:
        raise InputError(f"{path}: not a readable .npz archive ({one_line(error)})") from None


def _map_stored_member(path: Path, info: zipfile.ZipInfo) -> np.ndarray | None:
    """Memory-map an uncompressed ``.npy`` member of a zip in place (None for a header version we cannot parse)."""
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        signature, name_length, extra_length = _ZIP_LOCAL_HEADER.unpack(handle.read(_ZIP_LOCAL_HEADER.size))
        if signature != b"PK\x03\x04":
            raise ValueError(f"bad local header for member {info.filename}")
        handle.seek(name_length + extra_length, os.SEEK_CUR)
        version = np.lib.format.read_magic(handle)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            return None
        shape, fortran_order, dtype = readers[version](handle)
        offset = handle.tell()
    if dtype.hasobject:
        raise ValueError(f"member {info.filename} holds Python objects")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran_order else "C")

