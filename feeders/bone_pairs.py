"""Bone definitions: the (joint, parent) pairs whose difference makes the bone stream (docs/method.md §6)."""
from __future__ import annotations

import numpy as np

from engine.errors import InputError

#: NTU RGB+D, 1-based; (21, 21) makes the spine-centre bone zero.
NTU_PAIRS = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
    (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23), (21, 21), (23, 8),
    (24, 25), (25, 12),
)

#: NW-UCLA, 1-based; (3, 3) makes the spine bone zero.
UCLA_PAIRS = (
    (1, 2), (2, 3), (3, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11),
    (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
)

_PAIRS_BY_GRAPH = {"ntu_rgb_d": NTU_PAIRS, "ucla": UCLA_PAIRS}


def bone_pairs(graph: str) -> np.ndarray:
    """0-based (P, 2) int64 array of (joint, parent) pairs for ``graph``.

    ``graph`` is a layout name as in ``meta.json`` (``"ntu_rgb_d"``, ``"ucla"``) or the dotted class path of
    the public configs (``"graph.ntu_rgb_d.Graph"``).
    """
    key = graph.removeprefix("graph.").removesuffix(".Graph")
    if key not in _PAIRS_BY_GRAPH:
        raise InputError(f"no bone pairs for graph {graph!r} (known: {', '.join(_PAIRS_BY_GRAPH)})")
    return np.asarray(_PAIRS_BY_GRAPH[key], dtype=np.int64) - 1
