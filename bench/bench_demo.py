"""Does co-learning help the skeleton-only model? The demo's ablation, over several seeds, with a probe of F_g.

    python -m bench.bench_demo [--seeds 1 2 3 4 5] [--split test] [--jobs 2] [--out bench/out/demo_ablation]

Trains the demo's CTR-GCN baseline and MMCL with FAM only, FRM only and FAM + FRM, each with the frozen
towers at random weights and with the pretrained-like ones (``tools.pretrain_demo_clip``), through the real
command (``main_mmcl.py``), then reports per run the last-epoch top-1 of the skeleton-only model on ``--split``,
overall and on the two object pairs (drink vs touch the mouth, phone call vs touch the ear: one motion
program, told apart in the skeleton only by the grip), and a linear probe of the frozen pooled feature F_g
that predicts the held object (fitted on the training split, scored on ``--split``). The table gives mean ±
std over seeds and the paired difference against the baseline of the same seed. Choose settings with
``--split val`` (the demo's validation performers) and report ``--split test``. Runs go ``--jobs`` at a time,
one thread each; finished runs are kept in ``--out`` and reused, so a stopped bench resumes.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.checkpoint import extract_state_dict, load_state, load_training_checkpoint
from engine.data import build_dataset
from engine.fileio import write_text_atomic
from engine.trainer import build_model
from feeders.demo_actions import DEMO_CLASSES, OBJECT_PAIRS
from tools import run_demo

BASELINE_CONFIG, MMCL_CONFIG = "config/demo/baseline_joint.yaml", "config/demo/joint.yaml"
PAIR_CLASSES = sorted(i for i, spec in enumerate(DEMO_CLASSES) if any(spec.name in pair for pair in OBJECT_PAIRS))
OBJECT_OF_CLASS = np.array([[None, *sorted({s.held for s in DEMO_CLASSES if s.held})].index(s.held)
                            for s in DEMO_CLASSES])


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: which helpers train with the backbone and which towers made their inputs."""

    name: str
    fam: bool = False
    frm: bool = False
    towers: str = ""  # 'random' or 'pretrained' (see tools.run_demo.feature_stores)

    def argv(self, stores: dict[str, dict[str, Path]]) -> list[str]:
        if not (self.fam or self.frm):
            return ["--config", BASELINE_CONFIG]
        paths = stores[self.towers]
        return ["--config", MMCL_CONFIG, "--mmcl", f"fam={str(self.fam).lower()}", f"frm={str(self.frm).lower()}",
                f"rgb_features={paths['rgb']}", f"text_features={paths['text']}"]


VARIANTS = [Variant("baseline")] + [
    Variant(f"{helpers} ({towers})", fam="FAM" in helpers, frm="FRM" in helpers, towers=towers)
    for towers in ("random", "pretrained") for helpers in ("FAM", "FRM", "FAM+FRM")
]


@dataclass
class RunResult:
    top1: float
    pair_top1: float
    probe: float  # held-object accuracy of a linear probe on F_g, all samples of the split
    probe_pairs: float  # the same on the object-pair classes


def pooled_features(work_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """F_g (N, C) of the run's last checkpoint on ``split`` (test-time transform) and the labels."""
    checkpoint = load_training_checkpoint(work_dir / "last.pt")
    config = checkpoint["config"]
    config["test_feeder_args"] = {**config["test_feeder_args"], "split": split}
    dataset = build_dataset(config, "test")
    backbone = build_model(config, None)
    load_state(backbone, extract_state_dict(checkpoint, work_dir / "last.pt"), work_dir / "last.pt")
    backbone.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=64)
    with torch.inference_mode():
        features = [backbone.forward_features(batch[0].float())[1] for batch in loader]
    return torch.cat(features).numpy(), np.asarray(dataset.label)


def probe(work_dir: Path, split: str) -> tuple[float, float]:
    """Held-object accuracy of a linear probe on F_g: fitted on the training split, scored on ``split``
    (all samples, and the object-pair classes alone)."""
    train_x, train_y = pooled_features(work_dir, "train")
    eval_x, eval_y = pooled_features(work_dir, split)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
    classifier.fit(train_x, OBJECT_OF_CLASS[train_y])
    right = classifier.predict(eval_x) == OBJECT_OF_CLASS[eval_y]
    return float(right.mean()), float(right[np.isin(eval_y, PAIR_CLASSES)].mean())


def run(variant: Variant, seed: int, split: str, stores: dict, out: Path) -> RunResult:
    """Train (unless already done) one variant with one seed; evaluate it on ``split``."""
    work_dir = out / "runs" / split / f"{variant.name.replace(' ', '_').replace('(', '').replace(')', '')}-{seed}"
    summary = work_dir / "bench.json"
    if summary.is_file():
        return RunResult(**json.loads(summary.read_text()))
    argv = [sys.executable, "main_mmcl.py", *variant.argv(stores), "--seed", str(seed), "--work-dir", str(work_dir),
            "--test-feeder-args", f"split={split}", "--overwrite"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    completed = subprocess.run(argv, check=False, env=env, capture_output=True, text=True)
    if completed.returncode:
        raise RuntimeError(f"{variant.name} seed {seed} failed:\n{completed.stderr[-2000:]}")
    results = json.loads((work_dir / "results.json").read_text())
    scores = np.load(work_dir / f"epoch{results['last']['epoch']}_test_score.npz")
    right = scores["scores"].argmax(1) == scores["labels"]
    pair = np.isin(scores["labels"], PAIR_CLASSES)
    result = RunResult(float(right.mean()), float(right[pair].mean()), *probe(work_dir, split))
    write_text_atomic(summary, json.dumps(result.__dict__) + "\n")
    return result


def _cell(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * spread:.1f}"


def table(results: dict[str, list[RunResult]], seeds: list[int]) -> str:
    """Markdown: per variant mean ± std of each metric and the paired difference against the baseline."""
    base = results["baseline"]
    head = "| variant | top-1 | object pairs | paired Δ top-1 | paired Δ pairs (min) | probe F_g: object (pairs) |"
    lines = [head, "|---|---|---|---|---|---|"]
    for name, runs in results.items():
        delta = [r.top1 - b.top1 for r, b in zip(runs, base, strict=True)]
        delta_pair = [r.pair_top1 - b.pair_top1 for r, b in zip(runs, base, strict=True)]
        paired = "—" if name == "baseline" else _cell(delta)
        paired_pair = "—" if name == "baseline" else f"{_cell(delta_pair)} ({100 * min(delta_pair):+.1f})"
        lines.append(f"| {name} | {_cell([r.top1 for r in runs])} | {_cell([r.pair_top1 for r in runs])} | "
                     f"{paired} | {paired_pair} | {_cell([r.probe for r in runs])} "
                     f"({_cell([r.probe_pairs for r in runs])}) |")
    per_seed = ["", "Per seed, top-1 (object pairs):", "", "| variant | " + " | ".join(f"seed {s}" for s in seeds)
                + " |", "|---|" + "---|" * len(seeds)]
    for name, runs in results.items():
        per_seed.append(f"| {name} | " + " | ".join(f"{100 * r.top1:.1f} ({100 * r.pair_top1:.1f})" for r in runs)
                        + " |")
    return "\n".join(lines + per_seed) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--split", choices=("val", "test"), default="test", help="where runs are scored")
    parser.add_argument("--variants", nargs="+", default=[v.name for v in VARIANTS], help="subset of the rows")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once (one thread each)")
    parser.add_argument("--out", type=Path, default=Path("bench/out/demo_ablation"))
    args = parser.parse_args(argv)
    variants = [v for v in VARIANTS if v.name in args.variants]
    if variants[0].name != "baseline":
        variants.insert(0, VARIANTS[0])
    start = time.perf_counter()
    stores = run_demo.prepare_inputs()
    jobs = [(variant, seed) for seed in args.seeds for variant in variants]
    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(lambda job: run(*job, args.split, stores, args.out), jobs))
    results = {v.name: [done[jobs.index((v, s))] for s in args.seeds] for v in variants}
    report = table(results, args.seeds)
    minutes = (time.perf_counter() - start) / 60
    header = (f"Demo ablation on the {args.split} split, seeds {args.seeds}: last-epoch top-1 % of the skeleton-only "
              f"model, mean ± std over seeds ({minutes:.0f} min, {args.jobs} jobs)\n\n")
    write_text_atomic(args.out / f"table_{args.split}.md", header + report)
    print("\n" + header + report)


if __name__ == "__main__":
    main()
