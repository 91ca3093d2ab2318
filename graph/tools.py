"""Adjacency construction for skeleton graphs (spatial labelling of ST-GCN / CTR-GCN)."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

Edge = tuple[int, int]


def one_based_to_zero(edges: Iterable[Edge]) -> list[Edge]:
    """Turn 1-based joint pairs, as the datasets document them, into 0-based ones."""
    return [(i - 1, j - 1) for i, j in edges]


def edge2mat(edges: Iterable[Edge], num_node: int) -> np.ndarray:
    """Adjacency with ``A[j, i] = 1`` for every edge ``(i, j)``: column ``i`` lists where ``i`` sends."""
    adjacency = np.zeros((num_node, num_node))
    for i, j in edges:
        adjacency[j, i] = 1
    return adjacency


def normalize_digraph(adjacency: np.ndarray) -> np.ndarray:
    """Divide every column by its sum (columns that sum to zero stay zero)."""
    column_sum = adjacency.sum(axis=0)
    inverse = np.divide(1.0, column_sum, out=np.zeros_like(column_sum), where=column_sum > 0)
    return adjacency * inverse[None, :]


def get_spatial_graph(num_node: int, inward: list[Edge]) -> np.ndarray:
    """Spatial labelling: stack of identity, normalised inward and normalised outward adjacency, (3, V, V)."""
    outward = [(j, i) for i, j in inward]
    identity = edge2mat([(i, i) for i in range(num_node)], num_node)
    return np.stack(
        (identity, normalize_digraph(edge2mat(inward, num_node)), normalize_digraph(edge2mat(outward, num_node)))
    )


class SkeletonGraph:
    """A joint layout given by its inward edges; ``A`` is the (3, V, V) spatial adjacency."""

    num_node: int
    inward_one_based: tuple[Edge, ...]

    def __init__(self, labeling_mode: str = "spatial") -> None:
        if labeling_mode != "spatial":
            raise ValueError(f"graph labeling_mode {labeling_mode!r} is not supported (use 'spatial')")
        self.self_link = [(i, i) for i in range(self.num_node)]
        self.inward = one_based_to_zero(self.inward_one_based)
        self.outward = [(j, i) for i, j in self.inward]
        self.neighbor = self.inward + self.outward
        self.A = get_spatial_graph(self.num_node, self.inward)
