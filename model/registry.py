"""Skeleton backbones by name: our short names and the dotted class paths of the public configs."""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from engine.errors import InputError
from model import ctrgcn, hdgcn, tdgcn

BACKBONES: dict[str, type[nn.Module]] = {
    "ctrgcn": ctrgcn.Model,
    "tdgcn": tdgcn.Model,
    "hdgcn": hdgcn.Model,
    "model.ctrgcn.Model": ctrgcn.Model,
    "model.tdgcn.Model": tdgcn.Model,
    "model.HDGCN.Model": hdgcn.Model,
}


def build_backbone(name: str, args: Mapping[str, Any] | None = None) -> nn.Module:
    """Instantiate backbone ``name`` with keyword ``args`` (a config's ``model`` and ``model_args``)."""
    if name not in BACKBONES:
        raise InputError(f"model: unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    cls = BACKBONES[name]
    accepted = [p for p in inspect.signature(cls).parameters]
    args = dict(args or {})
    for key in args:
        if key not in accepted:
            raise InputError(f"model_args: unknown argument {key!r} for {name}; accepted: {', '.join(accepted)}")
    return cls(**args)
