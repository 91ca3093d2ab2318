"""Validate feature stores against a dataset split, as the trainer does at start; print a summary per store.

    python -m llm_features.check_features --stores data/ntu120/features/blip/default \\
        --names data/ntu120/xsub/train_names.txt

Checks that every name of the split has a row, that the store's names are unique, that the features are
float16 / float32 and finite. Exit status: 0 when all stores pass, 2 (one ``error:`` line) otherwise.
"""
from __future__ import annotations

import argparse
import sys

from engine.errors import command
from feeders.feature_store import COMBINE, open_feature_stores
from llm_features.names import read_names


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", required=True, nargs="+", help="feature store folder(s)")
    parser.add_argument("--names", required=True, nargs="+", help="the split's names file(s), one name a line")
    parser.add_argument("--kind", choices=("text", "rgb"), default="text", help="store kind (default: %(default)s)")
    parser.add_argument("--combine", choices=COMBINE, default="concat",
                        help="several stores: how the trainer joins them, as mmcl.text_combine (default: %(default)s)")
    args = parser.parse_args(argv)
    names = read_names(args.names)
    stores = open_feature_stores(args.stores if len(args.stores) > 1 else args.stores[0], args.kind, args.combine)
    print(stores.check(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
