"""One resolver for everything a config names: a short registry name, or the dotted path of a user's own class.

    resolve("ctrgcn", BACKBONES, "model")                 # a registered class
    resolve("mypkg.nets.Net", BACKBONES, "model")          # imported from the user's package (on sys.path)

Backbones, feeders, graphs and co-learning helpers are all found this way, so a user's package plugs in
without editing the framework (as the public CTR-GCN code's ``import_class`` allowed). Importing a dotted
path runs that module's code, as any Python import does: name only packages you trust.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, TypeVar

from engine.errors import InputError

T = TypeVar("T")


def resolve(name: Any, registry: Mapping[str, T], what: str) -> T:
    """``registry[name]``, else the attribute ``Name`` of module ``package.module`` for ``name`` =
    ``package.module.Name``; anything else is an ``InputError`` naming ``what`` (the config key) and ``name``."""
    if not isinstance(name, str) or not name:
        raise InputError(f"{what}: expected a registered name or a dotted path, got {name!r}")
    if name in registry:
        return registry[name]
    module_name, _, attribute = name.rpartition(".")
    if not module_name:
        raise InputError(f"{what}: unknown name {name!r}; registered: {', '.join(registry)}; "
                         "or give the dotted path of your own class (package.module.Class)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InputError(f"{what}: cannot import {module_name!r} for {name!r} ({error})") from None
    if not hasattr(module, attribute):
        raise InputError(f"{what}: module {module_name!r} has no {attribute!r}")
    return getattr(module, attribute)
