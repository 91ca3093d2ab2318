"""Skeleton graphs: spatial-labelling adjacency of NTU RGB+D and NW-UCLA (docs/method.md §2)."""
from __future__ import annotations

import numpy as np
import pytest

from graph import ntu_rgb_d, ucla
from graph.tools import edge2mat, normalize_digraph


@pytest.mark.parametrize("module, joints, edges", [(ntu_rgb_d, 25, 24), (ucla, 20, 19)])
def test_spatial_adjacency(module, joints, edges):
    graph = module.Graph()
    a = graph.A
    assert a.shape == (3, joints, joints) and graph.num_node == joints
    np.testing.assert_array_equal(a[0], np.eye(joints))
    assert len(graph.inward) == edges and len(set(graph.inward)) == edges
    # one tree: every joint but the root has exactly one parent
    children = [child for child, _ in graph.inward]
    assert sorted(children) == sorted(set(children)) and len(set(range(joints)) - set(children)) == 1
    for subset, edges_of in ((a[1], graph.inward), (a[2], graph.outward)):
        columns = subset.sum(axis=0)
        assert np.allclose(columns[columns > 0], 1.0)  # column-normalised
        for i, j in edges_of:
            assert subset[j, i] > 0
    np.testing.assert_array_equal(a[1] > 0, (a[2] > 0).T)


def test_edge_direction_and_normalisation():
    adjacency = edge2mat([(0, 1), (2, 1)], 3)
    np.testing.assert_array_equal(adjacency, [[0, 0, 0], [1, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(normalize_digraph(np.array([[1.0, 0], [1, 0]])), [[0.5, 0], [0.5, 0]])


def test_ntu_spine_centre_is_the_root():
    graph = ntu_rgb_d.Graph()
    parents = dict(graph.inward)
    assert 20 not in parents and parents[0] == 1 and parents[22] == 7  # joint 21, spine base -> mid, 23 -> 8
    with pytest.raises(ValueError, match="labeling_mode"):
        ntu_rgb_d.Graph(labeling_mode="uniform")
