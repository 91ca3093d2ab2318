"""Writing our prepared skeleton format (docs/data_format.md): memory-mappable arrays plus sample names."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.fileio import atomic_path, write_text_atomic

FORMAT_NAME = "mmcl-skeleton"
FORMAT_VERSION = 1
#: What the C channels of a sample may be (``meta.json`` ``channels``): coordinates, then an optional keypoint
#: confidence. Without ``channels``, C = 3 is (x, y, z) and C = 2 is (x, y).
CHANNEL_LAYOUTS = (("x", "y", "z"), ("x", "y"), ("x", "y", "score"), ("x", "y", "z", "score"))


def split_paths(root: str | os.PathLike, split: str) -> dict[str, Path]:
    """Paths of the files of one split: ``data``, ``label``, ``names`` (and the optional ``color``)."""
    root = Path(root)
    return {
        "data": root / f"{split}_data.npy",
        "label": root / f"{split}_label.npy",
        "names": root / f"{split}_names.txt",
        "color": root / f"{split}_color.npy",
    }


def write_prepared_split(
    root: str | os.PathLike,
    split: str,
    data: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    names: Sequence[str],
    color: np.ndarray | None = None,
) -> None:
    """Write one split atomically: ``data`` (N, C, T, V, M) float32, 0-based ``labels``, one name per row.

    Each file is renamed into place only once complete; the names file goes last, so a split whose names
    file exists is whole.
    """
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.ndim != 5:
        raise ValueError(f"split {split!r}: data must be (N, C, T, V, M), got shape {data.shape}")
    if not len(data) == len(labels) == len(names):
        raise ValueError(f"split {split!r}: {len(data)} rows, {len(labels)} labels, {len(names)} names")
    if any("\n" in name or not name for name in names):
        raise ValueError(f"split {split!r}: sample names must be non-empty single lines")
    paths = split_paths(root, split)
    write_npy_atomic(paths["data"], data.astype(np.float32, copy=False))
    if color is not None:
        write_npy_atomic(paths["color"], np.asarray(color, dtype=np.float32))
    write_npy_atomic(paths["label"], labels)
    write_text_atomic(paths["names"], "".join(f"{name}\n" for name in names))


def write_npy_atomic(path: str | os.PathLike, array: np.ndarray, chunk_rows: int = 1024) -> None:
    """Save ``array`` as ``.npy`` at ``path`` atomically, copying in row chunks (works for memmaps too)."""
    with atomic_path(path, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=array.dtype, shape=array.shape)
        for start in range(0, max(len(array), 1), chunk_rows):
            out[start : start + chunk_rows] = array[start : start + chunk_rows]
        out.flush()
        del out


def write_meta(
    root: str | os.PathLike,
    dataset: str,
    num_class: int,
    graph: str | Mapping[str, Any],
    splits: dict[str, int],
    channels: Sequence[str] | None = None,
) -> None:
    """Write ``meta.json`` describing a prepared dataset.

    ``graph`` is a layout name or an edge list ``{"num_node", "edges", "center"}`` (docs/custom_skeletons.md);
    ``channels``, one of :data:`CHANNEL_LAYOUTS`, is written when given.
    """
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "dataset": dataset,
        "num_class": num_class,
        "graph": graph,
        "splits": splits,
    }
    if channels is not None:
        meta["channels"] = list(channels)
    write_text_atomic(Path(root) / "meta.json", json.dumps(meta, indent=2) + "\n")


def checked_channels(channels: Any, num_channels: int, source: str | os.PathLike) -> tuple[str, ...] | None:
    """``meta.json``'s ``channels`` (None when absent) checked against the data's C; ``source`` names the file."""
    if channels is None:
        return None
    layout = tuple(channels) if isinstance(channels, list) else None
    if layout not in CHANNEL_LAYOUTS or len(layout) != num_channels:
        allowed = " or ".join(str(list(c)) for c in CHANNEL_LAYOUTS if len(c) == num_channels) or "none"
        raise InputError(f"{source}: 'channels' {channels!r} does not describe the data's {num_channels} channels "
                         f"(allowed: {allowed})")
    return layout
