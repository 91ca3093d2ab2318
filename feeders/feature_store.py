"""Feature stores: per-sample RGB or text features, or attributes, kept as one memory-mapped (N, D) array plus
the names.

A store is a folder::

    features.npy    (N, D) float16 or float32, row i belongs to names.txt line i
    names.txt       N sample names
    meta.json       {"kind": "rgb" | "text" | "attribute" | ..., "dim": D, ...: how the features were made}
    answers.jsonl   text stores: {"name", "question", "answer"} per row, in row order (optional)

An attribute store (``write_attribute_store``) holds one class id per sample (D = 1) and names its classes in
``meta.json`` (``"classes"``): side information a co-learning helper can read, such as the object in the hand.

Rows are looked up by sample name, so one store can serve several protocols of a dataset. ``check`` validates
a store against a split (names complete and unique, dtype, finite values) before training;
``open_feature_stores`` reads several text stores (e.g. one per prompt) as one, concatenated or averaged.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.fileio import read_json, read_text, write_text_atomic
from feeders.prepared import write_npy_atomic
from feeders.skeleton_store import load_npy


def write_feature_store(root: str | os.PathLike, features: np.ndarray, names: Sequence[str], meta: dict[str, Any],
                        answers: Sequence[dict[str, str]] | None = None) -> None:
    """Write a store atomically file by file; ``meta.json`` goes last, so a store with one is complete."""
    root = Path(root)
    features = np.asarray(features)
    if features.ndim != 2 or len(features) != len(names):
        raise ValueError(f"{root}: features must be (N, D) with one name per row, got {features.shape} "
                         f"and {len(names)} names")
    if len(set(names)) != len(names):
        raise ValueError(f"{root}: sample names are not unique")
    root.mkdir(parents=True, exist_ok=True)
    write_npy_atomic(root / "features.npy", features)
    write_text_atomic(root / "names.txt", "".join(f"{name}\n" for name in names))
    if answers is not None:
        write_text_atomic(root / "answers.jsonl", "".join(json.dumps(row) + "\n" for row in answers))
    write_text_atomic(root / "meta.json", json.dumps({**meta, "dim": int(features.shape[1]),
                                                       "count": len(names)}, indent=2) + "\n")


def write_attribute_store(root: str | os.PathLike, values: Sequence[str], names: Sequence[str], attribute: str,
                          classes: Sequence[str] | None = None) -> list[str]:
    """Write one categorical value per sample as an attribute store: class ids (D = 1) over ``classes`` (default:
    the sorted distinct ``values``), named ``attribute``; returns the classes."""
    classes = sorted(set(values)) if classes is None else list(classes)
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise InputError(f"attribute {attribute!r}: needs at least two distinct classes, got {classes}")
    ids = {value: index for index, value in enumerate(classes)}
    unknown = [value for value in values if value not in ids]
    if unknown:
        raise InputError(f"attribute {attribute!r}: value {unknown[0]!r} is not one of the classes {classes}")
    features = np.array([[ids[value]] for value in values], dtype=np.float32).reshape(len(values), 1)
    write_feature_store(root, features, names, {"kind": "attribute", "attribute": attribute, "classes": classes})
    return classes


class FeatureStore:
    """A store opened read-only: ``rows_for(names)`` maps sample names to rows of the memory-mapped array.

    ``kind`` is the kind the caller expects (its ``meta.json`` must agree), or None for whatever the store says.
    """

    def __init__(self, root: str | os.PathLike, kind: str | None) -> None:
        self.root = Path(root)
        for required in ("features.npy", "names.txt", "meta.json"):
            if not (self.root / required).is_file():
                raise InputError(f"{kind + ' ' if kind else ''}feature store {self.root}: missing {required}")
        self.meta = read_json(self.root / "meta.json")
        self.features = load_npy(self.root / "features.npy", mmap_mode="r")
        self.names = read_text(self.root / "names.txt").splitlines()
        if not isinstance(self.meta, dict):
            raise InputError(f"{self.root / 'meta.json'}: expected a JSON object")
        kind = kind or str(self.meta.get("kind", "feature"))
        if self.features.ndim != 2 or not np.issubdtype(self.features.dtype, np.number):
            raise InputError(f"{self.root / 'features.npy'}: must be a numeric (N, D) array, got "
                             f"{self.features.dtype} {self.features.shape}")
        if len(self.features) != len(self.names):
            raise InputError(f"{self.root / 'names.txt'}: {len(self.names)} lines, but features.npy of the {kind} "
                             f"feature store has {len(self.features)} rows")
        if self.meta.get("kind", kind) != kind:
            raise InputError(f"{self.root}: a {self.meta.get('kind')} feature store was given as the {kind} store")
        self.kind = kind
        self.index = {name: row for row, name in enumerate(self.names)}

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def check(self, names: Sequence[str], chunk_rows: int = 65536) -> str:
        """Validate the store for the samples ``names`` (names unique and all present, float16/float32, every
        needed value finite); a one-line summary, or an ``InputError`` naming what is wrong."""
        if len(self.index) != len(self.names):
            duplicate = next(name for name, count in Counter(self.names).items() if count > 1)
            raise InputError(f"{self.root / 'names.txt'}: {len(self.names) - len(self.index)} duplicate sample "
                             f"names, e.g. {duplicate}")
        if self.features.dtype not in (np.float16, np.float32):
            raise InputError(f"{self.root / 'features.npy'}: dtype {self.features.dtype}, expected float16 or float32")
        rows, bad, first = np.sort(self.rows_for(names)), 0, ""
        for start in range(0, len(rows), chunk_rows):
            part = rows[start:start + chunk_rows]
            finite = np.isfinite(self.features[part]).all(axis=1)
            if not finite.all():
                bad, first = bad + int((~finite).sum()), first or self.names[int(part[np.argmin(finite)])]
        if bad:
            raise InputError(f"{self.kind} feature store {self.root}: {bad} samples have NaN or inf features, "
                             f"e.g. {first}")
        if self.kind == "attribute":
            self._check_class_ids(rows)
        what = self.meta.get("features", self.meta.get("kind", self.kind))
        return (f"{self.kind} feature store {self.root}: {what}, {len(names)} of {len(self.names)} samples, "
                f"{self.dim}-d {self.features.dtype}, names unique, values finite")

    def _check_class_ids(self, rows: np.ndarray) -> None:
        """An attribute store's rows are one whole class id each, below the number of its ``classes``."""
        classes = self.meta.get("classes")
        if not isinstance(classes, list) or len(classes) < 2:
            raise InputError(f"{self.root / 'meta.json'}: an attribute store names its classes ('classes', at "
                             "least two)")
        values = np.asarray(self.features[np.sort(rows)], dtype=np.float64)
        whole = (values == np.round(values)) & (values >= 0) & (values < len(classes))
        if values.shape[1] != 1 or not whole.all():
            raise InputError(f"attribute store {self.root}: expected one class id in [0, {len(classes)}) per sample")

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) float32 features of ``rows``."""
        return np.asarray(self.features[rows], dtype=np.float32)

    def rows_for(self, names: Sequence[str]) -> np.ndarray:
        """Row of each name; names missing from the store are one error with their count and the first few."""
        missing = [name for name in names if name not in self.index]
        if missing:
            raise InputError(f"{self.kind} feature store {self.root}: {len(missing)} of {len(names)} samples have "
                             f"no features, e.g. {', '.join(missing[:3])} (not in its names.txt)")
        return np.fromiter((self.index[name] for name in names), dtype=np.int64, count=len(names))

    def check_dim(self, expected: int | None) -> None:
        """Refuse a store whose width differs from ``expected`` (e.g. a checkpoint's FAM input width)."""
        if expected is not None and expected != self.dim:
            raise InputError(f"{self.kind} feature store {self.root}: features are {self.dim}-d, expected {expected}")

    def row(self, index: int) -> np.ndarray:
        return np.array(self.features[index], dtype=np.float32)


class StoreGroup:
    """Several stores of the same samples read as one: each sample's rows concatenated or averaged."""

    def __init__(self, stores: Sequence[FeatureStore], combine: str = "concat") -> None:
        if combine not in COMBINE:
            raise InputError(f"unknown combination {combine!r}: expected one of {', '.join(COMBINE)}")
        dims = {store.dim for store in stores}
        if combine == "mean" and len(dims) > 1:
            raise InputError(f"feature stores {', '.join(str(store.root) for store in stores)}: cannot average "
                             f"features of different widths {sorted(dims)}")
        self.stores, self.combine, self.kind = list(stores), combine, stores[0].kind
        self.root = " + ".join(str(store.root) for store in stores)

    @property
    def dim(self) -> int:
        return sum(store.dim for store in self.stores) if self.combine == "concat" else self.stores[0].dim

    def rows_for(self, names: Sequence[str]) -> np.ndarray:
        """(len(names), number of stores): each name's row in every store."""
        return np.stack([store.rows_for(names) for store in self.stores], axis=1)

    def check(self, names: Sequence[str]) -> str:
        return "; ".join(store.check(names) for store in self.stores) + f" ({self.combine}: {self.dim}-d)"

    check_dim = FeatureStore.check_dim

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) float32 features of ``rows`` (one column per store)."""
        parts = [store.gather(rows[:, column]) for column, store in enumerate(self.stores)]
        return np.concatenate(parts, axis=1) if self.combine == "concat" else np.mean(parts, axis=0)

    def row(self, rows: np.ndarray) -> np.ndarray:
        return self.gather(rows[None])[0]


COMBINE = ("concat", "mean")


def open_feature_stores(roots: str | os.PathLike | Sequence[str | os.PathLike], kind: str,
                        combine: str = "concat") -> FeatureStore | StoreGroup:
    """One store, or several (a list of folders) read as one ``StoreGroup``."""
    if isinstance(roots, (str, os.PathLike)):
        return FeatureStore(roots, kind)
    if not roots:
        raise InputError(f"no {kind} feature store given")
    return StoreGroup([FeatureStore(root, kind) for root in roots], combine)
