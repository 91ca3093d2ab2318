"""Bone definitions: the (joint, parent) pairs whose difference makes the bone stream (docs/method.md §6).

NTU RGB+D and NW-UCLA keep CTR-GCN's fixed lists; any other layout's bones follow from its graph's inward
edges: each joint minus the joint one hop nearer the centre, so bones point away from the centre and the
centre's own bone is zero (docs/custom_skeletons.md).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from engine.errors import InputError
from graph.registry import build_graph

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


def pairs_from_inward(num_node: int, inward: Iterable[tuple[int, int]]) -> np.ndarray:
    """0-based (V, 2) int64 (joint, parent) pairs from 0-based inward (child, parent) edges, in joint order.

    A joint without a parent (the centre) is its own parent; a joint with several keeps the first listed.
    """
    parent = list(range(num_node))
    for child, towards_centre in reversed(list(inward)):
        parent[child] = towards_centre
    return np.stack((np.arange(num_node), parent), axis=1).astype(np.int64)


def bone_pairs(graph: str | Mapping[str, Any]) -> np.ndarray:
    """0-based (P, 2) int64 array of (joint, parent) pairs for ``graph``.

    ``graph`` is the layout as ``meta.json`` gives it: a name (``"ntu_rgb_d"``, ``"ucla"``, ``"coco"``), a
    dotted class path (``"graph.ntu_rgb_d.Graph"`` as in the public configs, or a user's graph class with
    ``num_node`` and ``inward``), or an edge list ``{"num_node": V, "edges": [[i, j], ...], "center": c}``
    (the ``graph_args`` of ``graph: edges``).
    """
    if isinstance(graph, Mapping):
        layout = build_graph("edges", graph, what="meta.json graph")
    elif isinstance(graph, str):
        key = graph.removeprefix("graph.").removesuffix(".Graph")
        if key in _PAIRS_BY_GRAPH:
            return np.asarray(_PAIRS_BY_GRAPH[key], dtype=np.int64) - 1
        layout = build_graph(graph, what="meta.json graph")
    else:
        raise InputError(f"meta.json graph {graph!r}: expected a graph name, a dotted class path or an edge list")
    num_node, inward = getattr(layout, "num_node", None), getattr(layout, "inward", None)
    if type(num_node) is not int or inward is None:
        raise InputError(f"meta.json graph {graph!r} has no num_node and inward edges to take the bones from")
    return pairs_from_inward(num_node, inward)
