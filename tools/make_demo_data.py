"""Command: generate the synthetic multimodal demo dataset.

    python -m tools.make_demo_data --out data/demo [--seed 0] [--train-per-class N] [--test-per-class N] [--no-rgb]

A non-empty output folder is only written into when it holds a complete demo dataset made with the same
arguments (regenerating it gives identical files), or with ``--overwrite``.
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from engine.errors import InputError, command
from feeders.demo_data import MANIFEST, generate_demo_dataset


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    default = {name: p.default for name, p in inspect.signature(generate_demo_dataset).parameters.items()}
    parser = argparse.ArgumentParser(
        prog="python -m tools.make_demo_data",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--seed", type=int, default=default["seed"], help="random seed")
    parser.add_argument("--train-per-class", type=int, default=default["num_train_per_class"], help="train samples per class")
    parser.add_argument("--test-per-class", type=int, default=default["num_test_per_class"], help="test samples per class")
    parser.add_argument("--max-frames", type=int, default=default["max_frames"], help="frames per row")
    parser.add_argument("--panels", type=int, default=default["strip_panels"], help="panels per temporal RGB strip")
    parser.add_argument("--panel-size", type=int, default=default["panel_size"], help="panel side in pixels")
    parser.add_argument("--no-rgb", action="store_true", help="skip the RGB strips")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty folder that differs")
    return parser


def check_output(out: Path, generator_args: dict, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless it is a complete demo made with ``generator_args`` or ``overwrite``."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if overwrite or not any(out.iterdir()):
        return
    manifest = out / MANIFEST
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8")).get("args") if manifest.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        previous = None
    if previous != generator_args:
        raise InputError(
            f"{out}: not empty and not a complete demo dataset made with these arguments;"
            " pass --overwrite to write there"
        )


@command
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    generator_args = {
        "num_train_per_class": args.train_per_class,
        "num_test_per_class": args.test_per_class,
        "max_frames": args.max_frames,
        "seed": args.seed,
        "with_rgb": not args.no_rgb,
        "strip_panels": args.panels,
        "panel_size": args.panel_size,
    }
    start = time.perf_counter()
    check_output(args.out, generator_args, args.overwrite)
    summary = generate_demo_dataset(args.out, **generator_args)
    splits = summary["splits"]
    rgb = f"RGB strips {args.panels}x{args.panel_size}px" if not args.no_rgb else "no RGB strips"
    print(
        f"demo dataset: {len(summary['classes'])} classes, {splits['train']} train / {splits['test']} test samples, "
        f"{args.max_frames} frames, {rgb}, answers -> {args.out} ({time.perf_counter() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
