"""The exception types a command reports as one line: bad user input, and a run that cannot go on.

The command line prints their message as a single line and exits non-zero, so every message names the
culprit: the file, the sample or the config key, or the epoch and step where a run stopped.
"""
from __future__ import annotations

import functools
import sys
import tokenize
import zipfile
import zlib
from collections.abc import Callable

#: What the standard readers (numpy, zipfile, zlib, json, pickle, tokenize) raise on truncated or corrupted
#: bytes; a reader of an outside file turns these into an ``InputError`` naming the file.
CORRUPT_FILE_ERRORS = (OSError, ValueError, EOFError, SyntaxError, MemoryError, OverflowError, zlib.error,
                       zipfile.BadZipFile, tokenize.TokenError)


class InputError(Exception):
    """Bad input from the user: the message is one line naming the file, sample or key at fault."""


class RunStopped(Exception):
    """A run that stopped before its end (non-finite loss, failed write, signal): one line saying where and
    what is kept; the command exits with ``exit_status``."""

    def __init__(self, message: str, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def command(main: Callable[..., int]) -> Callable[..., int]:
    """Decorate a command's ``main(argv)``: an ``InputError`` becomes one ``error: ...`` line and exit status 2,
    a ``RunStopped`` one ``stopped: ...`` line and its own exit status."""

    @functools.wraps(main)
    def run(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except RunStopped as err:
            print(f"stopped: {err}", file=sys.stderr)
            return err.exit_status

    return run
