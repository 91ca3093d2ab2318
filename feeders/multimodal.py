"""The MMCL training dataset: a skeleton dataset plus each sample's RGB input and text feature.

Items are ``(skeleton, label, index, rgb, text, *extra)``. ``rgb`` is a row of an RGB feature store (fast path:
the encoder never runs while training) or the sample's strip image ``<dir>/<name>.jpg`` preprocessed for
an encoder run in the loop; ``text`` is a row of a text feature store; ``extra`` holds a row of each further
named store (e.g. an attribute store a co-learning helper reads), in order. A modality that is off is an empty
array, so batches always have the same structure. Every name is checked against the stores at start.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from engine.errors import CORRUPT_FILE_ERRORS, InputError
from engine.fileio import one_line
from feeders.feature_store import FeatureStore, StoreGroup

EMPTY = np.zeros(0, dtype=np.float32)


def read_strip(path: Path, preprocess: Callable[[Image.Image], torch.Tensor]) -> torch.Tensor:
    """Open a strip image and preprocess it; an unreadable file is an ``InputError`` naming it."""
    try:
        with Image.open(path) as image:
            return preprocess(image)
    except (*CORRUPT_FILE_ERRORS, Image.DecompressionBombError) as err:
        raise InputError(f"{path}: unreadable image ({one_line(err)})") from None


class MultimodalDataset(Dataset):
    """Adds RGB, text and further per-sample inputs (``stores``, in order), looked up by sample name, to a
    skeleton dataset's items."""

    def __init__(self, skeleton: Dataset, rgb_store: FeatureStore | None = None, rgb_images: str | None = None,
                 rgb_preprocess: Callable[[Image.Image], torch.Tensor] | None = None,
                 text_store: FeatureStore | StoreGroup | None = None,
                 stores: Mapping[str, FeatureStore] | None = None) -> None:
        self.skeleton = skeleton
        names = list(skeleton.sample_name)
        self.rgb_store, self.text_store = rgb_store, text_store
        self.rgb_rows = rgb_store.rows_for(names) if rgb_store is not None else None
        self.text_rows = text_store.rows_for(names) if text_store is not None else None
        self.stores = [(store, store.rows_for(names)) for store in (stores or {}).values()]
        self.rgb_images = Path(rgb_images) if rgb_images else None
        self.rgb_preprocess = rgb_preprocess
        if self.rgb_images is not None:
            if rgb_preprocess is None:
                raise ValueError("rgb_images needs the encoder's preprocess function")
            missing = [name for name in names if not (self.rgb_images / f"{name}.jpg").is_file()]
            if missing:
                raise InputError(f"RGB strip folder {self.rgb_images}: {len(missing)} of {len(names)} samples have "
                                 f"no <name>.jpg, e.g. {', '.join(missing[:3])}")

    def __len__(self) -> int:
        return len(self.skeleton)

    def __getattr__(self, name: str):
        # sample_name, label, num_class, set_epoch, class_names, ... come from the skeleton dataset
        if name == "skeleton":
            raise AttributeError(name)
        return getattr(self.skeleton, name)

    def _rgb(self, row: int) -> np.ndarray | torch.Tensor:
        if self.rgb_rows is not None:
            return self.rgb_store.row(self.rgb_rows[row])
        if self.rgb_images is not None:
            return read_strip(self.rgb_images / f"{self.skeleton.sample_name[row]}.jpg", self.rgb_preprocess)
        return EMPTY

    def __getitem__(self, index: int):
        data, label, item_index = self.skeleton[index]
        row = item_index % len(self.skeleton.sample_name)
        text = self.text_store.row(self.text_rows[row]) if self.text_rows is not None else EMPTY
        return data, label, item_index, self._rgb(row), text, *(store.row(rows[row]) for store, rows in self.stores)
