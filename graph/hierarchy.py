"""Hierarchically decomposed graphs (HD-GCN, Lee et al., ICCV 2023): joints grouped by hop distance from a centre.

Joints are split into groups ``g_0 = {centre of mass}, g_1, ..., g_L`` by their distance from the centre. Layer
``i`` of the hierarchy joins two neighbouring groups: its three subsets are the identity on ``g_i ∪ g_{i+1}``,
the column-normalised edges from every joint of ``g_i`` to every joint of ``g_{i+1}`` and the column-normalised
edges back. ``A`` is (L, 3, V, V).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import ClassVar

import numpy as np

from graph.tools import edge2mat, normalize_digraph

Groups = tuple[tuple[int, ...], ...]


def hierarchical_adjacency(groups: Sequence[Sequence[int]], num_node: int) -> np.ndarray:
    """The (L, 3, V, V) adjacency of 0-based joint ``groups`` (L + 1 of them)."""
    layers = []
    for inner, outer in pairwise(groups):
        forward = [(i, j) for i in inner for j in outer]
        layers.append(np.stack((
            edge2mat([(i, i) for i in (*inner, *outer)], num_node),
            normalize_digraph(edge2mat(forward, num_node)),
            normalize_digraph(edge2mat([(j, i) for i, j in forward], num_node)),
        )))
    return np.stack(layers)


class HierarchicalGraph:
    """A joint layout decomposed around a centre of mass ``CoM`` (1-based joint id, a key of ``GROUPS``).

    ``A`` is the (L, 3, V, V) adjacency, ``groups`` the 0-based joint groups from the centre outwards.
    """

    num_node: int
    #: 1-based joint groups per centre of mass, from the centre outwards.
    GROUPS: ClassVar[Mapping[int, Groups]]
    default_com: int

    def __init__(self, CoM: int | None = None, labeling_mode: str = "spatial") -> None:
        com = self.default_com if CoM is None else CoM
        if labeling_mode != "spatial":
            raise ValueError(f"graph labeling_mode {labeling_mode!r} is not supported (use 'spatial')")
        if com not in self.GROUPS:
            raise ValueError(f"graph CoM={com!r} is not one of {sorted(self.GROUPS)}")
        self.CoM = com
        self.groups = tuple(tuple(joint - 1 for joint in group) for group in self.GROUPS[com])
        self.A = hierarchical_adjacency(self.groups, self.num_node)
