"""Command: an attribute store (one categorical value per sample) from JSON-lines records, for a co-learning helper.

    python -m tools.make_attribute_store --records data/demo/answers/train.jsonl --key held \\
        --out data/demo/attributes/held [--none empty] [--classes empty cup phone ...] [--overwrite]

Each line of a records file is a JSON object with the sample's ``name`` and the attribute under ``--key`` (a
string, a number or a boolean; null is the ``--none`` class). The store (``feeders.feature_store``: class ids,
the classes in ``meta.json``) is what ``mmcl.helpers.<name>.inputs`` names, e.g. for the positive control
``attribute_head`` (docs/helpers.md). The demo's answers files record the object really in the hand
(``held``). Everything is read and checked before the store is written; an existing store is kept unless
``--overwrite``.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.errors import InputError, command
from engine.fileio import read_text
from feeders.feature_store import write_attribute_store


def read_records(path: Path, key: str, none: str) -> dict[str, str]:
    """``{name: value}`` of a records file (values as strings, null as ``none``); one error line per problem."""
    if not path.is_file():
        raise InputError(f"records file not found: {path}")
    values: dict[str, str] = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as err:
            raise InputError(f"{path}:{number}: not valid JSON ({getattr(err, 'msg', 'nested too deeply')})") from None
        if not isinstance(record, dict) or not isinstance(record.get("name"), str) or key not in record:
            raise InputError(f"{path}:{number}: expected an object with a string 'name' and a {key!r}")
        value = record[key]
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise InputError(f"{path}:{number}: {key!r} must be a string, number, boolean or null, got {value!r}")
        if record["name"] in values:
            raise InputError(f"{path}:{number}: sample {record['name']!r} appears twice")
        values[record["name"]] = none if value is None else str(value)
    if not values:
        raise InputError(f"{path}: no records")
    return values


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", nargs="+", required=True, help="JSON-lines files, one record per sample")
    parser.add_argument("--key", required=True, help="the record field holding the attribute")
    parser.add_argument("--out", required=True, help="the store folder to write")
    parser.add_argument("--none", default="none", help="the class of null values (default: none)")
    parser.add_argument("--classes", nargs="+", help="the classes in order (default: the sorted values found)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store (default: refuse)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if (out / "meta.json").exists() and not args.overwrite:
        raise InputError(f"{out} already holds a store: pass --overwrite to replace it")
    values: dict[str, str] = {}
    for path in map(Path, args.records):
        records = read_records(path, args.key, args.none)
        twice = next((name for name in records if name in values), None)
        if twice is not None:
            raise InputError(f"{path}: sample {twice!r} is in an earlier records file too")
        values.update(records)
    classes = write_attribute_store(out, list(values.values()), list(values), args.key, args.classes)
    print(f"{len(values)} samples, attribute {args.key!r} over {len(classes)} classes ({', '.join(classes)}) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
