"""Adjacency construction for skeleton graphs (spatial labelling of ST-GCN / CTR-GCN), and the orientation of
an undirected edge list towards its centre joint (docs/custom_skeletons.md)."""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

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


def hop_distances(num_node: int, edges: Any, center: int) -> list[int]:
    """Hops from ``center`` to every joint along the undirected 0-based ``edges`` (pairs of joints).

    A ``ValueError`` (``TypeError`` if ``edges`` is not a list) names the first problem: a joint count that is
    not a positive integer, a centre or edge end outside 0..V-1, an edge that is not a pair, a self-loop, an
    edge listed twice (either way round) or a joint the edges do not connect to the centre.
    """
    if type(num_node) is not int or num_node <= 0:
        raise ValueError(f"num_node must be a positive integer, got {num_node!r}")
    joints = range(num_node)
    if type(center) is not int or center not in joints:
        raise ValueError(f"center must be a joint index in 0..{num_node - 1}, got {center!r}")
    if not isinstance(edges, Sequence) or isinstance(edges, str):
        raise TypeError(f"edges must be a list of [joint, joint] pairs, got {edges!r}")
    neighbours: list[list[int]] = [[] for _ in joints]
    seen: set[frozenset[int]] = set()
    for edge in edges:
        if not (isinstance(edge, Sequence) and len(edge) == 2 and all(type(j) is int and j in joints for j in edge)):
            raise ValueError(f"edge {edge!r} must be a pair of joint indices in 0..{num_node - 1}")
        i, j = edge
        if i == j or frozenset(edge) in seen:
            raise ValueError(f"edge {list(edge)} is a self-loop or listed twice")
        seen.add(frozenset(edge))
        neighbours[i].append(j)
        neighbours[j].append(i)
    distance = [-1] * num_node
    distance[center] = 0
    queue = deque([center])
    while queue:
        joint = queue.popleft()
        for neighbour in neighbours[joint]:
            if distance[neighbour] < 0:
                distance[neighbour] = distance[joint] + 1
                queue.append(neighbour)
    unreached = [joint for joint in joints if distance[joint] < 0]
    if unreached:
        raise ValueError(f"joint(s) {unreached[:5]} are not connected to the centre {center} by the edges")
    return distance


def orient_edges(num_node: int, edges: Any, center: int) -> list[Edge]:
    """The undirected 0-based ``edges`` as inward (child, parent) pairs, the parent one hop nearer ``center``.

    Edges keep their order. Besides :func:`hop_distances`' checks, an edge between two joints equally far from
    the centre (an odd cycle) cannot be oriented and is a ``ValueError``.
    """
    distance = hop_distances(num_node, edges, center)
    inward = []
    for i, j in edges:
        if distance[i] == distance[j]:
            raise ValueError(f"edge {[i, j]} joins two joints {distance[i]} hops from the centre {center}, "
                             "so it cannot point towards the centre")
        inward.append((i, j) if distance[i] > distance[j] else (j, i))
    return inward


def check_labeling_mode(labeling_mode: str) -> None:
    """Only the spatial labelling (identity, inward, outward) is built."""
    if labeling_mode != "spatial":
        raise ValueError(f"graph labeling_mode {labeling_mode!r} is not supported (use 'spatial')")


class SkeletonGraph:
    """A joint layout given by its inward edges; ``A`` is the (3, V, V) spatial adjacency.

    Subclasses set ``num_node`` and ``inward_one_based`` (1-based (child, parent) pairs towards the centre).
    """

    num_node: int
    inward_one_based: tuple[Edge, ...]

    def __init__(self, labeling_mode: str = "spatial") -> None:
        self._build(one_based_to_zero(self.inward_one_based), labeling_mode)

    def _build(self, inward: list[Edge], labeling_mode: str) -> None:
        """Set the links and ``A`` from the 0-based inward edges."""
        check_labeling_mode(labeling_mode)
        self.self_link = [(i, i) for i in range(self.num_node)]
        self.inward = inward
        self.outward = [(j, i) for i, j in self.inward]
        self.neighbor = self.inward + self.outward
        self.A = get_spatial_graph(self.num_node, self.inward)


class EdgeGraph(SkeletonGraph):
    """A joint layout given as pyskl writes one: ``num_node`` joints, undirected 0-based ``edges`` and the
    ``center`` joint; the edges are oriented towards the centre (:func:`orient_edges`).

    ``graph: edges`` with ``graph_args: {num_node, edges, center}`` in a config (docs/custom_skeletons.md).
    """

    def __init__(self, num_node: int, edges: Any, center: int, labeling_mode: str = "spatial") -> None:
        self.num_node, self.center = num_node, center
        self._build(orient_edges(num_node, edges, center), labeling_mode)
