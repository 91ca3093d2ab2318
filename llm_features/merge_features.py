"""Join the feature stores of sharded ``answer_questions`` runs (``--shard i/n``) into one run folder.

    python -m llm_features.merge_features --parts run/shard0 run/shard1 --out run/all \\
        --names data/ntu120/xsub/train_names.txt

Each part is a run folder (one store per prompt, ``<part>/<prompt>/``) or a single store. Every part must hold
the same prompts, each complete and made the same way (``meta.json`` equal but for the counts); sample names
must be unique across the parts and, with ``--names``, exactly the names listed (the rows then follow that
order, as an unsharded run's do; without it, the parts' order).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from engine.errors import InputError, command
from feeders.feature_store import FeatureStore, write_feature_store
from llm_features.encode_answers import read_answers
from llm_features.names import read_names

_COUNTS = ("count", "dim")


def prompt_folders(part: Path) -> dict[str, Path]:
    """The stores of a part by prompt name ("" for a part that is itself a store)."""
    if (part / "meta.json").is_file():
        return {"": part}
    if not part.is_dir():
        raise InputError(f"--parts {part}: not a folder")
    folders = {child.name: child for child in sorted(part.iterdir()) if child.is_dir()}
    if not folders:
        raise InputError(f"--parts {part}: holds no prompt folder")
    return folders


def merge_prompt(folders: list[Path], out: Path, names: list[str] | None) -> int:
    """Merge one prompt's stores into ``out``; the number of rows written."""
    for folder in folders:
        if not (folder / "meta.json").is_file():
            raise InputError(f"{folder}: not a complete store (its run has not finished: run that shard again)")
    stores = [FeatureStore(folder, "text") for folder in folders]
    metas = [{key: value for key, value in store.meta.items() if key not in _COUNTS} for store in stores]
    for store, meta in zip(stores[1:], metas[1:]):
        if meta != metas[0]:
            key = next(key for key in sorted({*meta, *metas[0]}) if meta.get(key) != metas[0].get(key))
            raise InputError(f"{store.root}: made differently from {stores[0].root} ({key}: {meta.get(key)!r} vs "
                             f"{metas[0].get(key)!r})")
    where: dict[str, tuple[int, int]] = {}
    for part, store in enumerate(stores):
        store.check(store.names)
        for row, name in enumerate(store.names):
            if name in where:
                raise InputError(f"sample {name} is in both {stores[where[name][0]].root} and {store.root}")
            where[name] = (part, row)
    if names is not None:
        missing, extra = [n for n in names if n not in where], len(where) - len(set(names) & where.keys())
        if missing or extra:
            raise InputError(f"{folders[0].parent}: the parts lack {len(missing)} of the {len(names)} names"
                             f"{f' (e.g. {missing[0]})' if missing else ''} and hold {extra} names not listed")
    order = names if names is not None else list(where)
    offsets = np.cumsum([0] + [len(store.names) for store in stores])
    features = np.concatenate([store.features for store in stores])[[offsets[where[name][0]] + where[name][1]
                                                                       for name in order]]
    answers = None
    if all((store.root / "answers.jsonl").is_file() for store in stores):
        by_name = {row["name"]: row for store in stores for row in read_answers(store.root / "answers.jsonl")}
        answers = [by_name[name] for name in order]
    write_feature_store(out, features, order, metas[0], answers=answers)
    return len(order)


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", required=True, nargs="+", help="the shards' run folders (or stores)")
    parser.add_argument("--out", required=True, help="merged run folder (or store, when the parts are stores)")
    parser.add_argument("--names", nargs="+",
                        help="names file(s) the merged stores must cover exactly (default: no check)")
    args = parser.parse_args(argv)
    parts = [prompt_folders(Path(part)) for part in args.parts]
    for part, folders in zip(args.parts[1:], parts[1:]):
        if folders.keys() != parts[0].keys():
            raise InputError(f"--parts {part}: prompts {sorted(folders)} differ from {args.parts[0]}'s "
                             f"{sorted(parts[0])}")
    out = Path(args.out)
    names = read_names(args.names) if args.names else None
    for prompt in parts[0]:
        target = out / prompt if prompt else out
        if (target / "meta.json").exists():
            raise InputError(f"{target} already holds a feature store: choose another --out or delete it")
        count = merge_prompt([folders[prompt] for folders in parts], target, names)
        print(f"merged {count} samples from {len(parts)} parts -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
