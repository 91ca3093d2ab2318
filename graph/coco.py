"""COCO 17-keypoint layout (HRNet and most 2D pose estimators; pyskl's ``coco`` layout), 0-based.

Joints: 0 nose, 1 left eye, 2 right eye, 3 left ear, 4 right ear, 5 left shoulder, 6 right shoulder,
7 left elbow, 8 right elbow, 9 left wrist, 10 right wrist, 11 left hip, 12 right hip, 13 left knee,
14 right knee, 15 left ankle, 16 right ankle. The tree and its centre (the nose) are pyskl's: the hips hang
from the shoulders, the eyes from the nose and the ears from the eyes (COCO's own skeleton has cycles).
"""
from graph.tools import EdgeGraph

NUM_NODE = 17
CENTER = 0
#: Undirected 0-based edges, from the centre outwards: face, arms, then trunk sides and legs.
EDGES = (
    (0, 1), (1, 3), (0, 2), (2, 4),
    (0, 5), (5, 7), (7, 9), (0, 6), (6, 8), (8, 10),
    (5, 11), (11, 13), (13, 15), (6, 12), (12, 14), (14, 16),
)  # fmt: skip


class Graph(EdgeGraph):
    """The COCO 17-keypoint skeleton, centred on the nose."""

    def __init__(self, labeling_mode: str = "spatial") -> None:
        super().__init__(NUM_NODE, EDGES, CENTER, labeling_mode)
