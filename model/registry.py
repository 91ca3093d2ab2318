"""Skeleton backbones by name: our short names, the dotted class paths of the public configs, or a user's own
class by its dotted path (``engine.plugins.resolve``)."""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from engine.errors import InputError
from engine.plugins import resolve
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
    cls = resolve(name, BACKBONES, "model")
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise InputError(f"model: {name!r} is not a torch.nn.Module class")
    parameters = inspect.signature(cls).parameters
    accepted = [key for key, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    args = dict(args or {})
    if len(accepted) == len(parameters):  # no **kwargs: every argument is checked by name
        for key in args:
            if key not in accepted:
                raise InputError(f"model_args: unknown argument {key!r} for {name}; accepted: {', '.join(accepted)}")
    return cls(**args)
