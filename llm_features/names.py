"""Merging sample names files, for the commands that walk a dataset's strips."""
from __future__ import annotations

from feeders.subset import read_names_file


def read_names(paths: list[str]) -> list[str]:
    """Sample names from one or more names files (``#`` lines skipped), first occurrence order, duplicates dropped."""
    return list(dict.fromkeys(name for path in paths for name in read_names_file(path)))
