"""Reading score files and aligning their rows by sample name.

A score file is our ``.npz`` (``names``, ``scores`` (N, K), optional ``labels``; read without pickle) or the
public ``.pkl`` (``{sample_name: logits (K,)}``, read with the restricted unpickler). All streams are aligned
to the first file's row order and kept in one (S, N, K) array of their common float dtype.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import CORRUPT_FILE_ERRORS, InputError
from tools.safe_pickle import load_pickle


@dataclass(frozen=True)
class ScoreFile:
    """One stream's scores as stored: one name per row, labels only if the file has them."""

    path: Path
    names: list[str]
    scores: np.ndarray
    labels: np.ndarray | None


@dataclass(frozen=True)
class Streams:
    """Several score files aligned to the first file's names: ``scores[s]`` is stream ``s``, (N, K)."""

    paths: list[Path]
    names: list[str]
    scores: np.ndarray
    labels: list[np.ndarray | None]

    @property
    def num_class(self) -> int:
        return self.scores.shape[2]


def read_scores(path: str | os.PathLike) -> ScoreFile:
    """Read and validate one ``.npz`` or ``.pkl`` score file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: score file not found")
    if path.suffix == ".npz":
        names, scores, labels = _read_npz(path)
    elif path.suffix == ".pkl":
        names, scores, labels = _read_pickle(path)
    else:
        raise InputError(f"{path}: not a score file (expected .npz or .pkl)")
    _check_content(path, names, scores, labels)
    return ScoreFile(path, names, scores, labels)


def load_streams(paths: list[str | os.PathLike]) -> Streams:
    """Read every file and align its rows (and labels) to the first file's sample order."""
    first = read_scores(paths[0])
    scores = np.empty((len(paths), *first.scores.shape), dtype=first.scores.dtype)
    scores[0] = first.scores
    labels = [first.labels]
    for index, path in enumerate(paths[1:], start=1):
        current = read_scores(path)
        if current.scores.shape[1] != first.scores.shape[1]:
            raise InputError(f"{current.path}: {current.scores.shape[1]} classes, but {first.path} has "
                             f"{first.scores.shape[1]}")
        order = row_order(first, current)
        dtype = np.result_type(scores.dtype, current.scores.dtype)
        if dtype != scores.dtype:  # a wider float type than the files before: keep every value exact
            scores = scores.astype(dtype)
        scores[index] = current.scores[order]
        labels.append(None if current.labels is None else current.labels[order])
    return Streams([Path(p) for p in paths], first.names, scores, labels)


def row_order(reference: ScoreFile, other: ScoreFile) -> slice | np.ndarray:
    """Rows of ``other`` in ``reference``'s name order; a missing or extra name is an ``InputError``."""
    if other.names == reference.names:
        return slice(None)
    position = {name: row for row, name in enumerate(other.names)}
    missing = [name for name in reference.names if name not in position]
    if missing:
        raise InputError(f"{other.path}: {len(missing)} samples of {reference.path} are missing "
                         f"(first: {missing[0]})")
    if len(other.names) > len(reference.names):
        known = set(reference.names)
        extra = [name for name in other.names if name not in known]
        raise InputError(f"{other.path}: {len(extra)} samples not in {reference.path} (first: {extra[0]})")
    return np.fromiter((position[name] for name in reference.names), dtype=np.int64, count=len(reference.names))


def _read_npz(path: Path) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("names", "scores") if key not in archive.files]
            if missing:
                raise InputError(f"{path}: no {missing[0]!r} array (has: {', '.join(archive.files)})")
            names, scores = archive["names"], archive["scores"]
            labels = archive["labels"] if "labels" in archive.files else None
    except CORRUPT_FILE_ERRORS as error:
        raise InputError(f"{path}: not a readable .npz score file ({' '.join(str(error).split())})") from None
    if names.ndim != 1 or names.dtype.kind != "U":
        raise InputError(f"{path}: 'names' must be a 1-D string array, got {names.dtype} {names.shape}")
    if labels is not None and (labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer)):
        raise InputError(f"{path}: 'labels' must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    return names.tolist(), scores, labels


def _read_pickle(path: Path) -> tuple[list[str], np.ndarray, None]:
    content = load_pickle(path)
    if not isinstance(content, dict) or not content:
        raise InputError(f"{path}: expected a non-empty dict {{sample_name: scores}}, got {type(content).__name__}")
    names = list(content)
    odd_key = next((key for key in names if not isinstance(key, str)), None)
    if odd_key is not None:
        raise InputError(f"{path}: sample names must be strings, got {odd_key!r}")
    rows = list(content.values())
    try:
        scores = np.stack(rows)
    except ValueError:
        shape = np.shape(rows[0])
        odd = next((name for name, row in zip(names, rows) if np.shape(row) != shape), names[0])
        raise InputError(f"{path}: sample {odd} has scores of shape {np.shape(content[odd])}, "
                         f"the first {shape}") from None
    return [str(name) for name in names], scores, None


def _check_content(path: Path, names: list[str], scores: np.ndarray, labels: np.ndarray | None) -> None:
    """Scores are a finite float (N, K) matrix with one unique name (and label) per row."""
    if scores.ndim != 2 or not np.issubdtype(scores.dtype, np.floating) or 0 in scores.shape:
        raise InputError(f"{path}: scores must be a non-empty float (N, K) array, got {scores.dtype} {scores.shape}")
    if len(names) != len(scores) or labels is not None and len(labels) != len(scores):
        counts = f"{len(names)} names" + ("" if labels is None else f", {len(labels)} labels")
        raise InputError(f"{path}: {len(scores)} score rows but {counts}")
    if len(set(names)) != len(names):
        counts = Counter(names)
        duplicate = next(name for name in names if counts[name] > 1)
        raise InputError(f"{path}: sample {duplicate} appears more than once")
    finite = np.isfinite(scores).all(axis=1)
    if not finite.all():
        raise InputError(f"{path}: sample {names[int(np.argmin(finite))]} has non-finite scores")
