"""Graphs by name: our short names, the dotted class paths of the public configs, or a user's own graph class
by its dotted path (``engine.plugins.resolve``), built with its arguments."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import InputError
from engine.plugins import resolve
from graph import coco, ntu_rgb_d, ucla
from graph.tools import EdgeGraph

GRAPHS: dict[str, type] = {
    "graph.ntu_rgb_d.Graph": ntu_rgb_d.Graph,
    "graph.ucla.Graph": ucla.Graph,
    "ntu_rgb_d": ntu_rgb_d.Graph,
    "ucla": ucla.Graph,
    "coco": coco.Graph,
    "edges": EdgeGraph,
}


def build_graph(name: str, args: Mapping[str, Any] | None = None, what: str = "model_args.graph") -> Any:
    """The graph named ``name`` built with keyword ``args``; a bad name or argument is an ``InputError``
    naming ``what`` (the config or meta.json key)."""
    cls = resolve(name, GRAPHS, what)
    try:
        return cls(**dict(args or {}))
    except (TypeError, ValueError) as error:
        raise InputError(f"{what} {name!r}: {error}") from None
