"""The per-epoch records of a run (``history.json``): the numbers of ``log.txt`` and TensorBoard, kept for
the training curves and surviving ``--resume``."""
from __future__ import annotations

import json
from pathlib import Path

from engine.fileio import read_json, write_text_atomic

HISTORY = "history.json"


def read_history(work_dir: Path, before_epoch: int) -> list[dict[str, float]]:
    """The records of epochs up to ``before_epoch`` (1-based, inclusive) of an earlier run in ``work_dir``."""
    path = work_dir / HISTORY
    if not path.is_file():
        return []
    records = read_json(path)
    return [record for record in records if isinstance(record, dict) and record.get("epoch", 0) <= before_epoch]


def write_history(work_dir: Path, records: list[dict[str, float]]) -> None:
    """Write ``records`` to ``history.json`` atomically."""
    write_text_atomic(work_dir / HISTORY, json.dumps(records, indent=1) + "\n")
