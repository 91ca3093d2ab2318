"""File input and output: atomic writes (a file appears complete under its final name, or not at all), and
text / JSON reads whose failures are one ``InputError`` naming the file."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.errors import InputError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed onto ``path``.

    ``suffix`` keeps an extension on the temporary name for writers that insist on one (``np.save``).
    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=target.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs get the usual permissions
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_directory(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a crash of the machine right after it keeps the new file)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems cannot; the rename itself is still atomic
            os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def one_line(error: BaseException) -> str:
    """The message of ``error`` on a single line (at most 200 characters), for an ``InputError``."""
    return " ".join(str(error).split())[:200]


def read_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable or non-UTF-8 file is an ``InputError`` naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def read_json(path: str | os.PathLike) -> Any:
    """The JSON content of ``path``; unreadable or malformed is an ``InputError`` naming the file."""
    try:
        return json.loads(read_text(path))
    except (json.JSONDecodeError, RecursionError) as error:
        raise InputError(f"{path}: malformed JSON ({one_line(error)})") from None


def cached_json(path: str | os.PathLike) -> Any:
    """The JSON content of a cache stamp or manifest, or None when it is missing, unreadable or malformed
    (the cache it describes is then simply remade)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
