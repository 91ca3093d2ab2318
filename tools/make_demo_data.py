"""Command: generate the synthetic multimodal demo dataset.

    python -m tools.make_demo_data --out data/demo [--seed 0] [--train-per-class N] [--test-per-class N]
        [--val-per-class N] [--no-rgb]

A folder that already holds the demo dataset made with the same arguments by the same generator version is
kept as it is; any other non-empty output folder is only written into with ``--overwrite``.
"""
from __future__ import annotations

import argparse
import inspect
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from engine.errors import InputError, command
from engine.fileio import cached_json
from feeders.demo_data import GENERATOR_VERSION, MANIFEST, generate_demo_dataset


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    default = {name: p.default for name, p in inspect.signature(generate_demo_dataset).parameters.items()}
    parser = argparse.ArgumentParser(
        prog="python -m tools.make_demo_data",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--seed", type=int, default=default["seed"], help="random seed (default: %(default)s)")
    parser.add_argument("--train-per-class", type=int, default=default["num_train_per_class"],
                        help="train samples per class (default: %(default)s)")
    parser.add_argument("--test-per-class", type=int, default=default["num_test_per_class"],
                        help="test samples per class (default: %(default)s)")
    parser.add_argument("--val-per-class", type=int, default=default["num_val_per_class"],
                        help="validation samples per class, for choosing settings (default: %(default)s)")
    parser.add_argument("--max-frames", type=int, default=default["max_frames"],
                        help="frames per row (default: %(default)s)")
    parser.add_argument("--panels", type=int, default=default["strip_panels"],
                        help="panels per temporal RGB strip (default: %(default)s)")
    parser.add_argument("--panel-size", type=int, default=default["panel_size"],
                        help="panel side in pixels (default: %(default)s)")
    parser.add_argument("--no-rgb", action="store_true", help="skip the RGB strips (default: drawn)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty folder that differs (default: refuse)")
    return parser


def holds_generation(out: Path, generator_args: dict) -> bool:
    """Whether ``out`` holds a complete demo dataset made by this generator version with ``generator_args``."""
    previous = cached_json(out / MANIFEST)
    return isinstance(previous, dict) and previous.get("version") == GENERATOR_VERSION \
        and previous.get("args") == generator_args


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse to write into a non-empty ``out`` (one that does not hold this very generation) without ``overwrite``."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if not (overwrite or not any(out.iterdir())):
        raise InputError(
            f"{out}: not empty and not a complete demo dataset made with these arguments by this version;"
            " pass --overwrite to write there"
        )


@command
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    generator_args = {
        "num_train_per_class": args.train_per_class,
        "num_test_per_class": args.test_per_class,
        "num_val_per_class": args.val_per_class,
        "max_frames": args.max_frames,
        "seed": args.seed,
        "with_rgb": not args.no_rgb,
        "strip_panels": args.panels,
        "panel_size": args.panel_size,
    }
    start = time.perf_counter()
    if holds_generation(args.out, generator_args):
        print(f"demo dataset: {args.out} already holds it (same arguments, generator version {GENERATOR_VERSION})")
        return 0
    check_output(args.out, args.overwrite)
    summary = generate_demo_dataset(args.out, **generator_args)
    splits = summary["splits"]
    rgb = f"RGB strips {args.panels}x{args.panel_size}px" if not args.no_rgb else "no RGB strips"
    print(
        f"demo dataset: {len(summary['classes'])} classes, {splits['train']} train / {splits['val']} val / "
        f"{splits['test']} test samples, "
        f"{args.max_frames} frames, {rgb}, answers -> {args.out} ({time.perf_counter() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
