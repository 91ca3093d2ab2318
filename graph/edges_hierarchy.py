"""HD-GCN's hierarchy for a layout given as an edge list: the joints grouped by their hop distance from the centre.

    model: hdgcn
    model_args: {graph: graph.edges_hierarchy.Graph, graph_args: {num_node: V, edges: [[i, j], ...], center: c}}

Group ``k`` holds the joints ``k`` hops from ``center`` (0-based), so layer ``k`` joins the joints at ``k``
and ``k + 1`` hops (graph/hierarchy.py). The public NTU groups (graph/ntu_rgb_d_hierarchy.py) are hand-made
and merge some hop levels, so this is not them for the NTU edges.
"""
from __future__ import annotations

from typing import Any

from graph.hierarchy import HierarchicalGraph, hierarchical_adjacency
from graph.tools import check_labeling_mode, hop_distances

#: HD-GCN's EdgeConvs take 5 nearest joints and, in its attention, 3 nearest layers.
MIN_JOINTS, MIN_LAYERS = 5, 3


class Graph(HierarchicalGraph):
    """The hop-level hierarchy of ``num_node`` joints joined by undirected 0-based ``edges`` around ``center``."""

    def __init__(self, num_node: int, edges: Any, center: int, labeling_mode: str = "spatial") -> None:
        check_labeling_mode(labeling_mode)
        distance = hop_distances(num_node, edges, center)
        levels = max(distance) + 1
        if num_node < MIN_JOINTS or levels - 1 < MIN_LAYERS:
            raise ValueError(f"HD-GCN needs at least {MIN_JOINTS} joints and {MIN_LAYERS + 1} hop levels from the "
                             f"centre ({MIN_LAYERS} layers); this layout has {num_node} joints and {levels} levels")
        self.num_node, self.center = num_node, center
        self.groups = tuple(tuple(j for j in range(num_node) if distance[j] == level) for level in range(levels))
        self.A = hierarchical_adjacency(self.groups, num_node)
