"""Selecting samples of a split by name: keep those a names file lists, drop those another lists.

A names file is UTF-8 text, one sample name per line; blank lines and lines starting with ``#`` are
ignored (``tools/make_holdout.py`` writes them). Names the split does not have are an error: the file was
made for another dataset or split.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.errors import InputError


def read_names_file(path: str | os.PathLike) -> list[str]:
    """The sample names listed in ``path``."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InputError(f"{path}: cannot read the names file ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason})") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def selected_rows(
    names: list[str], names_file: str | os.PathLike | None = None, exclude_names_file: str | os.PathLike | None = None,
    source: str | os.PathLike = "the dataset", split: str = "",
) -> np.ndarray:
    """Rows of ``names`` to use, in order: those ``names_file`` lists (all if None), minus ``exclude_names_file``'s.

    ``source`` and ``split`` (the data file or folder, the split's name) name an empty split in the error.
    """
    if not names:
        raise InputError(f"{source}: split {split!r} holds no sample")
    keep = np.ones(len(names), dtype=bool)
    if names_file is not None:
        keep &= _listed(names, names_file)
    if exclude_names_file is not None:
        keep &= ~_listed(names, exclude_names_file)
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        lists = " and ".join(str(path) for path in (names_file, exclude_names_file) if path is not None)
        raise InputError(f"{lists}: no sample of the split is left after selection (split {split!r} of {source})")
    return rows


def _listed(names: list[str], path: str | os.PathLike) -> np.ndarray:
    """Mask of the ``names`` that the names file ``path`` lists; every listed name must be in ``names``."""
    listed = set(read_names_file(path))
    unknown = listed.difference(names)
    if unknown:
        raise InputError(
            f"{path}: {len(unknown)} listed samples are not in the split (first: {min(unknown)}); "
            "was it made for another dataset or split?"
        )
    return np.fromiter((name in listed for name in names), dtype=bool, count=len(names))
