"""NTU RGB+D joint layout (Kinect v2, 25 joints)."""
from graph.tools import SkeletonGraph

#: 1-based (child, parent) pairs pointing towards the spine centre (joint 21).
INWARD = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
    (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23), (23, 8), (24, 25),
    (25, 12),
)


class Graph(SkeletonGraph):
    """The 25-joint NTU RGB+D skeleton."""

    num_node = 25
    inward_one_based = INWARD
