"""HD-GCN's hierarchy of the COCO 17-keypoint layout: joints grouped by hops from a centre (the nose by default)."""
from graph import coco, edges_hierarchy


class Graph(edges_hierarchy.Graph):
    """The COCO skeleton's hop-level hierarchy around ``center`` (0-based; 0, the nose, gives four layers)."""

    def __init__(self, center: int = coco.CENTER, labeling_mode: str = "spatial") -> None:
        super().__init__(coco.NUM_NODE, coco.EDGES, center, labeling_mode)
