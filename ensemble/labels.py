"""The true class of every fused sample: from the score files, a dataset split, or NTU sample names."""
from __future__ import annotations

import os
import re

import numpy as np

from engine.errors import InputError
from ensemble.scores import Streams
from feeders.skeleton_store import open_split
from tools.ntu_layout import NAME_PATTERN

#: NW-UCLA action ids (the ``aAA`` of ``aAA_sSS_eEE_vVV``) in label order: label = position.
UCLA_ACTIONS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)
UCLA_NAME = re.compile(r"a(\d+)_s\d+_e\d+_v\d+")


def resolve_labels(streams: Streams, labels_path: str | os.PathLike | None = None, split: str = "test",
                   hint: str = "pass --labels") -> np.ndarray:
    """Labels of ``streams.names``: ``labels_path`` if given, else the score files', else the NTU names'.

    ``hint`` ends the error raised when none of them gives labels.
    """
    if labels_path is not None:
        labels = labels_from_split(streams.names, labels_path, split)
    else:
        labels = labels_from_files(streams)
        if labels is None:
            labels = labels_from_ntu_names(streams.names, streams.paths[0], hint)
    out_of_range = (labels < 0) | (labels >= streams.num_class)
    if out_of_range.any():
        row = int(np.argmax(out_of_range))
        raise InputError(f"{labels_path or streams.paths[0]}: label {labels[row]} of sample {streams.names[row]} "
                         f"is outside the {streams.num_class} classes of the scores")
    return labels


def labels_from_files(streams: Streams) -> np.ndarray | None:
    """The labels the score files carry (all of them must agree), or None if none carries any."""
    carried = [(path, labels) for path, labels in zip(streams.paths, streams.labels) if labels is not None]
    if not carried:
        return None
    first_path, first = carried[0]
    for path, labels in carried[1:]:
        differ = labels != first
        if differ.any():
            row = int(np.argmax(differ))
            raise InputError(f"{path}: label {labels[row]} of sample {streams.names[row]} disagrees with "
                             f"{first_path} ({first[row]})")
    return first.astype(np.int64)


def labels_from_split(names: list[str], data_path: str | os.PathLike, split: str) -> np.ndarray:
    """Labels of ``names`` looked up by name in ``split`` of a prepared folder or CTR-GCN npz."""
    dataset = open_split(data_path, split)
    label_of = dict(zip(dataset.names, dataset.labels.tolist()))
    missing = [name for name in names if name not in label_of]
    if missing:
        raise InputError(f"{data_path}: {len(missing)} scored samples are not in split {split!r} "
                         f"(first: {missing[0]})")
    return np.array([label_of[name] for name in names], dtype=np.int64)


def labels_from_ntu_names(names: list[str], source: str | os.PathLike, hint: str = "pass --labels") -> np.ndarray:
    """Action id − 1 of NTU names ``SsssCcccPpppRrrrAaaa``, as the public ensemble scripts do."""
    actions = []
    for name in names:
        match = NAME_PATTERN.fullmatch(name)
        if match is None:
            raise InputError(f"{source}: no labels in the score files and sample {name} is not an NTU name "
                             f"(SsssCcccPpppRrrrAaaa): {hint}")
        actions.append(int(match.group(5)))  # AAA, 1-based
    return np.array(actions, dtype=np.int64) - 1


def labels_from_names(names: list[str], source: str | os.PathLike) -> np.ndarray:
    """Labels of NTU names (action id − 1) or NW-UCLA names (``aAA_sSS_eEE_vVV``, the action's position)."""
    if names and UCLA_NAME.fullmatch(names[0]):
        labels = []
        for name in names:
            match = UCLA_NAME.fullmatch(name)
            if match is None or int(match.group(1)) not in UCLA_ACTIONS:
                raise InputError(f"{source}: sample {name} is not an NW-UCLA name of one of its 10 actions")
            labels.append(UCLA_ACTIONS.index(int(match.group(1))))
        return np.array(labels, dtype=np.int64)
    return labels_from_ntu_names(names, source, "name the samples as NTU or NW-UCLA does")
