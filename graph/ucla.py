"""Northwestern-UCLA joint layout (Kinect v1, 20 joints)."""
from graph.tools import SkeletonGraph

#: 1-based (child, parent) pairs pointing towards the spine (joint 3).
INWARD = (
    (1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11), (13, 1),
    (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
)


class Graph(SkeletonGraph):
    """The 20-joint NW-UCLA skeleton."""

    num_node = 20
    inward_one_based = INWARD
