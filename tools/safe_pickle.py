"""Reading pickles from users without running their code: only numpy arrays and plain containers.

A pickle may name any importable callable, and unpickling calls it. ``SafeUnpickler`` resolves only the
few globals that numpy arrays, numpy scalars and ordered dicts are rebuilt from (pyskl annotation files,
score files); any other global is refused before it is imported, with an ``InputError`` naming the file.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from engine.errors import CORRUPT_FILE_ERRORS, InputError

#: (module, name) of every global a pickle of numpy data may use, for numpy 1.x and 2.x module names.
ALLOWED_GLOBALS = frozenset(
    (module, name)
    for core in ("numpy.core", "numpy._core")
    for module, name in (
        (f"{core}.multiarray", "_reconstruct"),  # ndarray, protocols <= 4
        (f"{core}.multiarray", "scalar"),  # numpy scalars (np.int64 labels)
        (f"{core}.numeric", "_frombuffer"),  # ndarray, protocol 5
    )
) | {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # bytes inside protocol-2 pickles
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` resolves only ``ALLOWED_GLOBALS``; ``source`` names the file in errors."""

    def __init__(self, file: Any, source: str | os.PathLike) -> None:
        super().__init__(file)
        self.source = str(source)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise InputError(f"{self.source}: refused to unpickle global {module}.{name} (only numpy data is allowed)")
        return super().find_class(module, name)


def load_pickle(path: str | os.PathLike) -> Any:
    """Unpickle ``path`` with ``SafeUnpickler``; a missing, truncated or malformed file is an ``InputError``."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return SafeUnpickler(handle, path).load()
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None
    except (pickle.UnpicklingError, *CORRUPT_FILE_ERRORS, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, RecursionError) as error:
        message = " ".join(str(error).split())
        raise InputError(f"{path}: not a readable pickle ({type(error).__name__}: {message})") from None
