"""Run the embedded demo end to end: synthetic data, RGB and text features, MMCL training, skeleton-only test.

    python -m tools.run_demo                 # MMCL (FAM + FRM) on the demo data
    python -m tools.run_demo --config config/demo/baseline_joint.yaml   # the CTR-GCN baseline

Each step is one of the project's commands, printed before it runs, so the demo doubles as a walk-through.
Data and features already made with the same arguments are reused; the demo's work_dir is replaced
(``--overwrite``), since a demo run is disposable.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import main_mmcl
from llm_features import encode_answers, extract_rgb_features
from tools import make_demo_data

DATA = Path("data/demo")
#: The demo's encoders: open_clip towers with random weights (nothing can be downloaded), small inputs.
ENCODER = ["--model", "ViT-S-32", "--pretrained", "none"]


def step(title: str, command: str, entry: Callable[[list[str]], int], argv: list[str]) -> None:
    """Print and run one command; stop the demo if it fails."""
    print(f"\n== {title}\n$ {command} {shlex.join(argv)}", flush=True)
    status = entry(argv)
    if status:
        sys.exit(status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config/demo/joint.yaml", help="demo config to train and test")
    parser.add_argument("--seed", type=int, default=1, help="training seed")
    args = parser.parse_args(argv)

    step("1. synthetic skeletons, RGB strips and answers", "python -m tools.make_demo_data",
         make_demo_data.main, ["--out", str(DATA)])
    rgb, text = DATA / "features" / "rgb", DATA / "features" / "text"
    if not (rgb / "meta.json").is_file():
        step("2. RGB features of the strips (frozen open_clip image tower)", "python -m llm_features.extract_rgb_features",
             extract_rgb_features.main, ["--images", str(DATA / "rgb"), "--names", str(DATA / "train_names.txt"),
                                         "--image-size", "64", "--workers", "0", "--out", str(rgb), *ENCODER])
    if not (text / "meta.json").is_file():
        step("3. text features of the answers (frozen open_clip text tower)", "python -m llm_features.encode_answers",
             encode_answers.main, ["--answers", str(DATA / "answers" / "train.jsonl"), "--out", str(text), *ENCODER])
    work_dir = Path("work_dir/demo") / Path(args.config).stem
    common = ["--config", args.config, "--work-dir", str(work_dir), "--seed", str(args.seed)]
    step("4. training", "python main_mmcl.py", main_mmcl.main, [*common, "--overwrite"])
    step("5. skeleton-only test of the last checkpoint", "python main_mmcl.py", main_mmcl.main,
         [*common, "--phase", "test", "--weights", str(work_dir / "last.pt"), "--overwrite"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
