"""Feeder names, as configs write them, mapped to dataset classes (or a user's own class by its dotted path,
``engine.plugins.resolve``), and a checked constructor."""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch.utils.data import Dataset

from engine.errors import InputError
from engine.plugins import resolve
from feeders.ntu import NTUFeeder
from feeders.ucla import UCLAFeeder

#: Our short names plus the dotted class paths of the public CTR-GCN configs.
FEEDERS: dict[str, type[Dataset]] = {
    "ntu": NTUFeeder,
    "ucla": UCLAFeeder,
    "feeders.feeder_ntu.Feeder": NTUFeeder,
    "feeders.feeder_ucla.Feeder": UCLAFeeder,
}


def build_feeder(name: str, args: Mapping[str, Any], seed: int = 0) -> Dataset:
    """Construct feeder ``name`` from config ``args`` with the run's ``seed``.

    Unknown feeder names and arguments the feeder does not take are ``InputError``s naming them. A feeder takes
    ``seed`` (the run's) if its constructor has that argument.
    """
    feeder = resolve(name, FEEDERS, "feeder")
    if not inspect.isclass(feeder):
        raise InputError(f"feeder: {name!r} is not a dataset class")
    parameters = set(inspect.signature(feeder).parameters)
    accepted = parameters - {"seed"}
    for key in args:
        if key not in accepted:
            hint = " (the seed comes from the run's seed)" if key == "seed" else ""
            known = ", ".join(sorted(accepted))
            raise InputError(f"feeder {name!r}: unknown argument {key!r}{hint}; accepted: {known}")
    return feeder(**args, seed=seed) if "seed" in parameters else feeder(**args)
