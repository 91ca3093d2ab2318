"""NTU RGB+D (25 joints) decomposed around joint 1 (base of spine), 2 (middle of spine) or 21 (spine centre)."""
from typing import ClassVar

from graph.hierarchy import Groups, HierarchicalGraph


class Graph(HierarchicalGraph):
    """The public HD-GCN hierarchy of the NTU skeleton; ``CoM`` 21 by default, six layers for every centre."""

    num_node = 25
    default_com = 21
    GROUPS: ClassVar[dict[int, Groups]] = {
        1: ((1,), (2, 13, 17), (14, 18, 21), (3, 5, 9, 15, 19), (4, 6, 10, 16, 20), (7, 11),
            (8, 12, 22, 23, 24, 25)),
        2: ((2,), (1, 21), (13, 17, 3, 5, 9), (14, 18, 4, 6, 10), (15, 19, 7, 11), (16, 20, 8, 12),
            (22, 23, 24, 25)),
        21: ((21,), (2, 3, 5, 9), (4, 6, 10, 1), (7, 11, 13, 17), (8, 12, 14, 18), (22, 23, 24, 25, 15, 19),
             (16, 20)),
    }
