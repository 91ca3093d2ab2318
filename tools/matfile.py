"""Reading one variable of a MATLAB ``.mat`` file; a truncated, corrupt or v7.3 file is one ``InputError``."""
from __future__ import annotations

import os

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from engine.errors import CORRUPT_FILE_ERRORS, InputError

#: What scipy raises on a cut-short or corrupted file (bad headers, broken zlib streams, wrong sizes).
_MAT_ERRORS = (*CORRUPT_FILE_ERRORS, TypeError, IndexError, KeyError, AttributeError, UnicodeDecodeError,
               MatReadError)


def read_mat_variable(path: str | os.PathLike, key: str) -> np.ndarray:
    """The array ``key`` of the MATLAB file ``path``."""
    try:
        content = scipy.io.loadmat(path, variable_names=[key])
    except NotImplementedError:
        raise InputError(f"{path}: MATLAB v7.3 files are not supported (re-save it with save -v7)") from None
    except _MAT_ERRORS as error:
        raise InputError(f"{path}: not a readable MATLAB file ({' '.join(str(error).split())[:200]})") from None
    if key not in content:
        raise InputError(f"{path}: no {key!r} variable")
    return np.asarray(content[key])
