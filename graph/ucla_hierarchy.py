"""NW-UCLA (20 joints) decomposed around joint 1 (hip centre), 2 (spine) or 3 (shoulder centre).

The public HD-GCN repository ships this layout only compiled (``graph/__pycache__``); the groups are those
of its ``get_groups(dataset='UCLA')``. Centre 2 gives five layers, centres 1 and 3 six.
"""
from typing import ClassVar

from graph.hierarchy import Groups, HierarchicalGraph


class Graph(HierarchicalGraph):
    """The HD-GCN hierarchy of the NW-UCLA skeleton; ``CoM`` 2 by default, as in the public module."""

    num_node = 20
    default_com = 2
    GROUPS: ClassVar[dict[int, Groups]] = {
        1: ((1,), (2, 13, 17), (3, 14, 18), (4, 5, 9, 15, 19), (6, 10, 16, 20), (7, 11), (8, 12)),
        2: ((2,), (1, 3), (4, 5, 9, 13, 17), (6, 10, 14, 18), (7, 11, 15, 19), (8, 12, 16, 20)),
        3: ((3,), (2, 4, 5, 9), (1, 6, 10), (7, 11, 13, 17), (8, 12, 14, 18), (15, 19), (16, 20)),
    }
