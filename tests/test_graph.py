"""Skeleton graphs: spatial-labelling adjacency of NTU RGB+D, NW-UCLA, COCO and edge lists (docs/method.md §2,
docs/custom_skeletons.md)."""
from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from graph import coco_hierarchy, edges_hierarchy, ntu_rgb_d, ucla
from graph.registry import build_graph
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


# ------------------------------------------------------------------------------------- edge lists (own skeletons)
#: pyskl's COCO layout (pyskl/utils/graph.py): inward (child, parent) pairs, 0-based, centred on the nose.
PYSKL_COCO_INWARD = {(15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6),
                     (5, 0), (6, 0), (1, 0), (3, 1), (2, 0), (4, 2)}


@pytest.mark.parametrize("module, center", [(ntu_rgb_d, 20), (ucla, 2)])
def test_an_edge_list_rebuilds_the_ntu_and_ucla_graphs(module, center):
    reference = module.Graph()
    undirected = [[j, i] if k % 2 else [i, j] for k, (i, j) in enumerate(reference.inward)]  # directions mixed
    graph = build_graph("edges", {"num_node": reference.num_node, "edges": undirected, "center": center})
    assert graph.inward == reference.inward
    np.testing.assert_array_equal(graph.A, reference.A)


def test_coco_is_pyskl_s_layout():
    graph = build_graph("coco")
    assert graph.num_node == 17 and graph.center == 0 and set(graph.inward) == PYSKL_COCO_INWARD
    assert graph.A.shape == (3, 17, 17)
    np.testing.assert_array_equal(graph.A, build_graph("graph.coco.Graph").A)
    np.testing.assert_array_equal(graph.A[1] > 0, (graph.A[2] > 0).T)


@pytest.mark.parametrize("args, message", [
    ({"num_node": 4, "edges": [[0, 1], [1, 2], [2, 3]], "center": 4}, r"center must be a joint index in 0\.\.3"),
    ({"num_node": 4, "edges": [[0, 1], [1, 5]], "center": 0}, r"edge \[1, 5\] must be a pair of joint indices"),
    ({"num_node": 4, "edges": [[0, 1], [1, 0], [1, 2], [2, 3]], "center": 0}, r"edge \[1, 0\] is a self-loop or"),
    ({"num_node": 4, "edges": [[0, 1], [2, 3]], "center": 0}, r"joint\(s\) \[2, 3\] are not connected to the centre 0"),
    ({"num_node": 4, "edges": [[0, 1], [0, 2], [1, 2], [2, 3]], "center": 0}, r"edge \[1, 2\] joins two joints 1 hops"),
    ({"num_node": 4, "edges": "0-1", "center": 0}, "edges must be a list of"),
    ({"num_node": 4.0, "edges": [], "center": 0}, "num_node must be a positive integer"),
    ({"num_node": 2, "edges": [[0, 1]]}, r"EdgeGraph.__init__\(\) missing 1 required positional argument: 'center'"),
])
def test_bad_edge_lists_are_one_line_errors(args, message):
    with pytest.raises(InputError, match=r"^model_args\.graph 'edges': " + message):
        build_graph("edges", args)


def test_a_non_tree_keeps_both_parents_in_the_adjacency():
    graph = build_graph("edges", {"num_node": 4, "edges": [[0, 1], [0, 2], [1, 3], [2, 3]], "center": 0})
    assert graph.inward == [(1, 0), (2, 0), (3, 1), (3, 2)]
    np.testing.assert_allclose(graph.A[1][:, 3], [0, 0.5, 0.5, 0])  # joint 3 sends to both parents


def test_hop_hierarchies_group_joints_by_distance_from_the_centre():
    coco = coco_hierarchy.Graph()
    assert coco.groups == ((0,), (1, 2, 5, 6), (3, 4, 7, 8, 11, 12), (9, 10, 13, 14), (15, 16))
    assert coco.A.shape == (4, 3, 17, 17)
    hips = coco_hierarchy.Graph(center=11)
    assert hips.groups[0] == (11,) and sorted(j for group in hips.groups for j in group) == list(range(17))
    with pytest.raises(ValueError, match="at least 5 joints and 4 hop levels .* 5 joints and 3 levels"):
        edges_hierarchy.Graph(5, [[0, 1], [1, 2], [0, 3], [3, 4]], 0)
