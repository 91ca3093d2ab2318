"""Run the embedded demo end to end: synthetic data, pretrained-like encoders, RGB and text features, MMCL
training, skeleton-only test.

    python -m tools.run_demo                 # MMCL (FAM + FRM) on the demo data
    python -m tools.run_demo --config config/demo/baseline_joint.yaml   # the CTR-GCN baseline

Each step is one of the project's commands, printed before it runs, so the demo doubles as a walk-through.
The demo owns ``data/demo`` and ``data/demo_clip``: what is already there and made with the same arguments is
reused (the small CLIP is pretrained once), anything else is remade; the demo's work_dir is replaced
(``--overwrite``), since a demo run is disposable.
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import main_mmcl
from engine.fileio import cached_json, write_text_atomic
from feeders.demo_data import MANIFEST
from llm_features import encode_answers, extract_rgb_features
from tools import make_demo_data, pretrain_demo_clip

DATA = Path("data/demo")
CLIP_DIR = Path("data/demo_clip")
FEATURES = DATA / "features"
#: The towers the features are made with: the pretrained-like small CLIP, or the same model at random weights.
TOWERS = {
    "pretrained": ["--model", pretrain_demo_clip.MODEL, "--pretrained", str(CLIP_DIR / pretrain_demo_clip.CHECKPOINT)],
    "random": ["--model", pretrain_demo_clip.MODEL, "--pretrained", "none"],
}
#: Strips are encoded panel by panel (5 person crops of 96 px, each resized to the tower's 64 px).
RGB_LAYOUT = ["--layout", "panels", "--panels", "5", "--workers", "0"]
STAMP = "inputs.json"


def step(title: str, command: str, entry: Callable[[list[str]], int], argv: list[str]) -> None:
    """Print and run one command; stop the demo if it fails."""
    print(f"\n== {title}\n$ {command} {shlex.join(argv)}", flush=True)
    status = entry(argv)
    if status:
        sys.exit(status)


def made_from(towers: str) -> dict:
    """What a feature folder was made from: the demo generation, the towers and (pretrained) their training."""
    inputs = {"demo": json.loads((DATA / MANIFEST).read_text(encoding="utf-8")), "towers": TOWERS[towers],
              "layout": RGB_LAYOUT}
    if towers == "pretrained":
        inputs["pretraining"] = json.loads((CLIP_DIR / pretrain_demo_clip.REPORT).read_text(encoding="utf-8"))["args"]
    return inputs


def feature_stores(towers: str) -> dict[str, Path]:
    """The RGB and text feature stores of the training split made with ``towers``, made unless up to date."""
    folder = FEATURES / towers
    stores = {"rgb": folder / "rgb", "text": folder / "text"}
    stamp = made_from(towers)
    if cached_json(folder / STAMP) == stamp:
        return stores
    shutil.rmtree(folder, ignore_errors=True)  # the demo's own cache, made from other inputs
    step(f"RGB features of the strips ({towers} image tower, frozen)", "python -m llm_features.extract_rgb_features",
         extract_rgb_features.main, ["--images", str(DATA / "rgb"), "--names", str(DATA / "train_names.txt"),
                                     *RGB_LAYOUT, "--out", str(stores["rgb"]), *TOWERS[towers]])
    step(f"text features of the answers ({towers} text tower, frozen)", "python -m llm_features.encode_answers",
         encode_answers.main, ["--answers", str(DATA / "answers" / "train.jsonl"), "--out", str(stores["text"]),
                               *TOWERS[towers]])
    write_text_atomic(folder / STAMP, json.dumps(stamp, indent=2) + "\n")
    return stores


def prepare_inputs(towers: tuple[str, ...] = ("pretrained", "random")) -> dict[str, dict[str, Path]]:
    """Demo data, the pretrained small CLIP and the feature stores of each kind of ``towers``."""
    step("synthetic skeletons, RGB strips and answers", "python -m tools.make_demo_data",
         make_demo_data.main, ["--out", str(DATA), "--overwrite"])
    if "pretrained" in towers:
        step("pretrained-like encoders: a small CLIP trained on a rendered image-caption corpus",
             "python -m tools.pretrain_demo_clip", pretrain_demo_clip.main, ["--out", str(CLIP_DIR)])
    return {kind: feature_stores(kind) for kind in towers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config/demo/joint.yaml",
                        help="demo config to train and test (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="training seed (default: %(default)s)")
    args = parser.parse_args(argv)

    prepare_inputs(("pretrained",))
    work_dir = Path("work_dir/demo") / Path(args.config).stem
    common = ["--config", args.config, "--work-dir", str(work_dir), "--seed", str(args.seed)]
    step("training", "python main_mmcl.py", main_mmcl.main, [*common, "--overwrite"])
    step("skeleton-only test of the last checkpoint", "python main_mmcl.py", main_mmcl.main,
         [*common, "--phase", "test", "--weights", str(work_dir / "last.pt"), "--overwrite"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
