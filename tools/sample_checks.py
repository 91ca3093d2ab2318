"""What every dataset preparer does with bad samples: find non-finite coordinates, skip unusable files with
their reason, report them and stop when nothing usable is left (docs/prepare_ntu.md, docs/prepare_other.md).

A preparer reads each file through ``read_or_skip`` (an ``InputError`` or ``OSError`` becomes a reason in
its ``skipped`` dict, name -> reason), calls ``check_skips`` once every file is read (one ``skipped NAME:
REASON`` line per sample on stderr; an ``InputError`` if nothing is usable, or if anything was skipped
under ``--strict``: then nothing has been written) and ``write_skip_log`` before its outputs.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from engine.errors import InputError
from engine.fileio import write_text_atomic

#: The skip list beside the outputs: a ``#`` count line, then one ``name<TAB>reason`` line per sample, by name.
LOG_NAME = "prepare_log.txt"
#: Help text of the ``--strict`` option of every preparer.
STRICT_HELP = (f"stop with an error, writing nothing, if any file is unreadable, corrupt or holds non-finite "
               f"coordinates (default: off, such files are skipped and listed in OUT/{LOG_NAME})")

T = TypeVar("T")
P = TypeVar("P", str, Path)


def check_finite(source: str, coords: np.ndarray, frames: np.ndarray | None = None) -> None:
    """Raise an ``InputError`` naming ``source`` if ``coords`` (F, V, C) has a NaN or infinite value.

    Values are taken as the float32 they are stored as (so a float64 beyond its range counts as infinite).
    Row ``f`` is frame ``frames[f]`` (0-based; default ``f``). The message counts the frames and joints
    affected and gives the first of them, 1-based.
    """
    with np.errstate(over="ignore"):
        bad = ~np.isfinite(np.asarray(coords, dtype=np.float32))
    if not bad.any():
        return
    rows, joints = np.nonzero(bad.reshape(*bad.shape[:2], -1).any(axis=2))
    frame_of = rows if frames is None else np.asarray(frames)[rows]
    first = np.lexsort((joints, frame_of))[0]
    raise InputError(
        f"{source}: {int(bad.sum())} non-finite coordinate(s) (NaN or infinite) in {len(np.unique(frame_of))} "
        f"frame(s) and {len(np.unique(joints))} joint(s), first at frame {frame_of[first] + 1}, joint {joints[first] + 1}"
    )


def read_or_skip(read: Callable[[P], T], name: str, path: P, skipped: dict[str, str]) -> T | None:
    """``read(path)``; if it raises ``InputError`` or ``OSError``, the reason goes to ``skipped[name]`` and
    the result is None."""
    try:
        return read(path)
    except InputError as error:
        skipped[name] = str(error)
    except OSError as error:
        skipped[name] = f"{path}: cannot read ({error.strerror})"
    return None


def check_skips(skipped: dict[str, str], strict: bool = False, empty: str | None = None) -> None:
    """Print each skipped sample as one ``skipped NAME: REASON`` line on stderr, by name; then raise an
    ``InputError`` if ``empty`` (the caller's message: nothing usable is left) or, with ``strict``, if any
    sample was skipped. The error names the count and the first sample."""
    for name in sorted(skipped):
        print(f"skipped {name}: {_one_line(skipped[name])}", file=sys.stderr)
    if not empty and not (strict and skipped):
        return
    if not skipped:
        raise InputError(empty)
    first = min(skipped)
    detail = f"{len(skipped)} skipped, first {first}: {_one_line(skipped[first])}"
    raise InputError(f"{empty} ({detail})" if empty else f"--strict: {detail}")


def write_skip_log(out: str | os.PathLike, skipped: dict[str, str]) -> None:
    """Write ``OUT/prepare_log.txt`` atomically: a ``#`` count line, then ``name<TAB>reason`` by name."""
    path = Path(out) / LOG_NAME
    lines = [f"# {len(skipped)} skipped sample(s): name<TAB>reason\n"]
    lines += [f"{name}\t{_one_line(skipped[name])}\n" for name in sorted(skipped)]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, "".join(lines))


def skip_note(out: str | os.PathLike, skipped: dict[str, str]) -> str:
    """The end-of-run count: ``N skipped (see OUT/prepare_log.txt)``."""
    return f"{len(skipped)} skipped (see {Path(out) / LOG_NAME})"


def _one_line(reason: str) -> str:
    return " ".join(reason.split())
