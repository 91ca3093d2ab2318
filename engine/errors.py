"""The one exception type for bad user input (config, data file, sample, checkpoint).

The command line prints its message as a single line and exits non-zero, so every message names the
culprit: the file, the sample or the config key.
"""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class InputError(Exception):
    """Bad input from the user: the message is one line naming the file, sample or key at fault."""


def command(main: Callable[..., int]) -> Callable[..., int]:
    """Decorate a command's ``main(argv)``: an ``InputError`` becomes one ``error: ...`` line and exit status 2."""

    @functools.wraps(main)
    def run(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    return run
