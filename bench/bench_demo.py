"""Does co-learning help the skeleton-only model? The demo's ablation, over several seeds, with a probe of F_g.

    python -m bench.bench_demo [--seeds 1 2 3 4 5] [--split test] [--jobs 2] [--out bench/out/demo_ablation]
                               [--helper NAME=YAML ...] [--train-args="--num-epoch 30 ..."]

Trains the demo's CTR-GCN baseline and MMCL with FAM only, FRM only and FAM + FRM, each with the frozen
towers at random weights and with the pretrained-like ones (``tools.pretrain_demo_clip``), and FAM + FRM fed
an oracle (a one-hot of the object really in the hand instead of features: the most any tower could tell
about it), and the positive control (``attribute_head``: a linear head on F_g trained to predict that object,
the strongest privileged signal there is), through the real command (``main_mmcl.py``). ``--helper
NAME=YAML`` adds a row training the skeleton model with a co-learning helper of your own (the YAML of its
``mmcl.helpers`` entry; ``HELD`` in it stands for the held-object attribute store, and the pretrained-like
towers' RGB and text stores are given), as docs/helpers.md shows. ``--train-args`` changes the recipe of
every run (e.g. the calibrated testbed's width and epochs); an ``--out`` folder keeps runs of one recipe. Per run it reports the last-epoch top-1 of the
skeleton-only model on ``--split``, overall and on the two object pairs (drink vs touch the mouth, phone call
vs touch the ear: one motion program, told apart in the skeleton only by the grip), and a linear probe of
the frozen pooled feature F_g that predicts the held object (fitted on the training split, scored on
``--split``), on the pairs and on the incidental classes, where the object is not given by the label. The
table gives mean ± std over seeds and the paired difference against the baseline of the same seed. Choose
settings with ``--split val`` (the demo's validation performers) and report ``--split test``;
``bench.rescore_demo`` scores the same runs on a larger sample of the split. Runs go
``--jobs`` at a time, one thread each; finished runs are kept in ``--out`` and reused, so a stopped bench
resumes.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
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
from engine.errors import InputError, command
from engine.fileio import cached_json, write_text_atomic
from engine.trainer import build_model
from feeders.demo_actions import DEMO_CLASSES, OBJECT_PAIRS
from feeders.demo_data import read_held_objects
from feeders.demo_render import OBJECT_STYLES
from feeders.feature_store import write_attribute_store, write_feature_store
from tools import run_demo

STAMP = "inputs.json"
BASELINE_CONFIG, MMCL_CONFIG = "config/demo/baseline_joint.yaml", "config/demo/joint.yaml"
PAIR_CLASSES = sorted(i for i, spec in enumerate(DEMO_CLASSES) if any(spec.name in pair for pair in OBJECT_PAIRS))
INCIDENTAL_CLASSES = [i for i, spec in enumerate(DEMO_CLASSES) if spec.incidental]
#: The oracle's feature: a one-hot of the object in the hand (first column: empty hands).
ORACLE_OBJECTS = (None, *sorted(OBJECT_STYLES))


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: which helpers train with the backbone and which towers made their inputs."""

    name: str
    fam: bool = False
    frm: bool = False
    towers: str = "pretrained"  # 'random', 'pretrained' (see tools.run_demo.feature_stores) or 'oracle'
    helpers: tuple[tuple[str, str], ...] = ()  # (name, YAML of its mmcl.helpers entry) of each helper trained

    def argv(self, stores: dict[str, dict[str, Path]]) -> list[str]:
        if not (self.fam or self.frm or self.helpers):
            return ["--config", BASELINE_CONFIG]
        paths = stores[self.towers]
        entries = ", ".join(f"{name}: {helper.replace('HELD', str(stores['held']['attribute']))}"
                            for name, helper in self.helpers)
        return ["--config", MMCL_CONFIG, "--mmcl", f"fam={str(self.fam).lower()}", f"frm={str(self.frm).lower()}",
                f"rgb_features={paths['rgb']}", f"text_features={paths['text']}",
                *([f"helpers={{{entries}}}"] if entries else [])]


def helper_variant(name: str, helper: str, **kwargs) -> Variant:
    """A row training the skeleton model with one helper (named after the row) and whatever ``kwargs`` add."""
    return Variant(name, helpers=((helper_name(name), helper),), **kwargs)


def helper_name(variant: str) -> str:
    """A variant's name as a helper name (an identifier)."""
    return "".join(c if c.isalnum() else "_" for c in variant).strip("_") or "helper"


#: The positive control: a linear head on F_g predicting the object really in the hand (training samples).
POSITIVE_CONTROL = "{type: attribute_head, weight: 1.0, inputs: {attribute: HELD}}"
#: The helpers beyond the paper, on the pretrained-like towers' RGB or text features (docs/helpers.md).
NEW_HELPERS = {
    "RGB teacher distillation": "{type: rgb_distill, weight: 1.0, temperature: 4.0}",
    "FAM, skeleton projection head": "{type: fam_projected, weight: 0.1}",
    "FAM, class-aware positives": "{type: fam_class_positives, weight: 0.1}",
    "text clusters": "{type: text_clusters, weight: 1.0, clusters: 8}",  # clusters chosen on val (docs/testbed.md)
}


def new_helpers(*names: str) -> tuple[tuple[str, str], ...]:
    """The named helpers of NEW_HELPERS as a variant's helpers."""
    return tuple((helper_name(name), NEW_HELPERS[name]) for name in names)


#: The rows: the paper's helpers on each kind of tower, the positive control, the new helpers alone and the
#: combinations of them that the val split chooses among.
VARIANTS = [Variant("baseline")] + [
    Variant(f"{helpers} ({towers})", fam="FAM" in helpers, frm="FRM" in helpers, towers=towers)
    for towers in ("random", "pretrained") for helpers in ("FAM", "FRM", "FAM+FRM")
] + [Variant("FAM+FRM (oracle)", fam=True, frm=True, towers="oracle"),
      helper_variant("positive control", POSITIVE_CONTROL)] + [
    helper_variant(name, helper) for name, helper in NEW_HELPERS.items()] + [
    Variant(f"FRM + {name}", frm=True, helpers=new_helpers(name)) for name in NEW_HELPERS] + [
    Variant("FAM, skeleton projection head + RGB teacher distillation",
            helpers=new_helpers("FAM, skeleton projection head", "RGB teacher distillation"))]


def oracle_stores() -> dict[str, Path]:
    """RGB and text stores holding, instead of features, a one-hot of the object in the hand (the demo's ground
    truth): what perfect towers could at most tell about it. Remade from the demo's current answers."""
    held = read_held_objects(run_demo.DATA, "train")
    one_hot = np.eye(len(ORACLE_OBJECTS), dtype=np.float32)[[ORACLE_OBJECTS.index(held[name]) for name in held]]
    stores = {kind: run_demo.FEATURES / "oracle" / kind for kind in ("rgb", "text")}
    for kind, root in stores.items():
        write_feature_store(root, one_hot, list(held), {"kind": kind, "encoder": "oracle: one-hot of the held object"})
    return stores


def held_store() -> dict[str, Path]:
    """The attribute store of the object in the hand of each training sample (empty hands: 'none')."""
    held = read_held_objects(run_demo.DATA, "train")
    root = run_demo.FEATURES / "oracle" / "held"
    write_attribute_store(root, [object_ or "none" for object_ in held.values()], list(held), "held",
                          ["none", *sorted(OBJECT_STYLES)])
    return {"attribute": root}


@dataclass
class RunResult:
    top1: float
    pair_top1: float
    probe: float  # held-object accuracy of a linear probe on F_g, all samples of the split
    probe_pairs: float  # the same on the object-pair classes
    probe_incidental: float  # the same on the classes whose object is not given by the label
    train_seconds: float = float("nan")  # the training epochs' wall time (one thread; shared if --jobs > 1)


@dataclass
class SplitOutputs:
    """What a run's last checkpoint gives on one split (test-time transform), row by row."""

    scores: np.ndarray  # class scores (N, K)
    features: np.ndarray  # the pooled feature F_g (N, C)
    labels: np.ndarray
    objects: np.ndarray  # the object held (the demo's ground truth; '' for empty hands)


def split_outputs(work_dir: Path, splits: tuple[str, ...], data_path: Path | None = None) -> list[SplitOutputs]:
    """The scores and F_g of the run's last checkpoint (loaded once) on each of ``splits`` of its demo data (or
    of ``data_path``)."""
    checkpoint = load_training_checkpoint(work_dir / "last.pt")
    config = checkpoint["config"]
    backbone = build_model(config, None)
    load_state(backbone, extract_state_dict(checkpoint, work_dir / "last.pt"), work_dir / "last.pt")
    backbone.eval()
    where = {"data_path": str(data_path)} if data_path is not None else {}
    outputs = []
    for split in splits:
        config["test_feeder_args"] = {**config["test_feeder_args"], "split": split, **where}
        dataset = build_dataset(config, "test")
        loader = torch.utils.data.DataLoader(dataset, batch_size=64)
        with torch.inference_mode():
            scores, features = zip(*(backbone.forward_features(batch[0].float()) for batch in loader), strict=True)
        held = read_held_objects(config["test_feeder_args"]["data_path"], split)
        objects = np.array([held[name] or "" for name in dataset.sample_name])
        outputs.append(SplitOutputs(torch.cat(scores).numpy(), torch.cat(features).numpy(),
                                    np.asarray(dataset.label), objects))
    return outputs


def _probe_accuracy(train_x: np.ndarray, train_objects: np.ndarray, eval_x: np.ndarray,
                    eval_objects: np.ndarray) -> np.ndarray:
    """Per evaluated sample, whether a linear probe fitted on the training rows tells its held object."""
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
    return classifier.fit(train_x, train_objects).predict(eval_x) == eval_objects


def probe(train: SplitOutputs, evaluated: SplitOutputs) -> tuple[float, float, float]:
    """Held-object accuracy of linear probes on F_g, fitted on ``train`` and scored on ``evaluated``: one
    fitted on every class (scored on all samples and on the object-pair classes), one fitted and scored on
    the incidental classes alone, where the object varies within each class."""
    right = _probe_accuracy(train.features, train.objects, evaluated.features, evaluated.objects)
    train_rows, eval_rows = np.isin(train.labels, INCIDENTAL_CLASSES), np.isin(evaluated.labels, INCIDENTAL_CLASSES)
    incidental = _probe_accuracy(train.features[train_rows], train.objects[train_rows],
                                 evaluated.features[eval_rows], evaluated.objects[eval_rows])
    return float(right.mean()), float(right[np.isin(evaluated.labels, PAIR_CLASSES)].mean()), float(incidental.mean())


def top1(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Top-1 accuracy overall and on the object-pair classes."""
    right = scores.argmax(1) == labels
    return float(right.mean()), float(right[np.isin(labels, PAIR_CLASSES)].mean())


def main_mmcl(argv: list[str], threads: int | None = None) -> None:
    """Run ``main_mmcl.py`` with ``argv`` in a fresh process (on ``threads`` threads if given); its error output
    if it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else None
    completed = subprocess.run([sys.executable, "main_mmcl.py", *argv], check=False, capture_output=True, text=True,
                               env=env)
    if completed.returncode:
        raise RuntimeError(f"main_mmcl.py {' '.join(argv)} failed:\n{completed.stderr[-2000:]}")


def run_dir(out: Path, split: str, variant: str, seed: int) -> Path:
    """The work dir of one run of the bench."""
    return out / "runs" / split / f"{variant.replace(' ', '_').replace('(', '').replace(')', '')}-{seed}"


def run(variant: Variant, seed: int, split: str, stores: dict, out: Path, train_args: list[str]) -> RunResult:
    """Train (unless already done) one variant with one seed; evaluate it on ``split``."""
    work_dir = run_dir(out, split, variant.name, seed)
    summary = work_dir / "bench.json"
    if summary.is_file():
        return RunResult(**json.loads(summary.read_text()))
    main_mmcl([*variant.argv(stores), *train_args, "--seed", str(seed), "--work-dir", str(work_dir),
               "--test-feeder-args", f"split={split}", "--overwrite"], threads=1)
    results = json.loads((work_dir / "results.json").read_text())
    scores = np.load(work_dir / f"epoch{results['last']['epoch']}_test_score.npz")
    seconds = sum(record["seconds"] for record in json.loads((work_dir / "history.json").read_text()))
    probes = probe(*split_outputs(work_dir, ("train", split)))
    result = RunResult(*top1(scores["scores"], scores["labels"]), *probes, seconds)
    write_text_atomic(summary, json.dumps(result.__dict__) + "\n")
    return result


def claim_out(out: Path, made_from: dict) -> None:
    """Make ``out`` the bench's folder for runs made from ``made_from`` (the demo data and the towers' training);
    refuse a folder holding runs made from other inputs rather than mix or delete them."""
    stamp = out / STAMP
    previous = cached_json(stamp)
    if previous is None and out.is_dir() and any(out.iterdir()):
        raise InputError(f"{out}: not a bench_demo folder (no {STAMP}); choose another --out")
    if previous is not None and previous != made_from:
        raise InputError(f"{out}: holds runs made from other demo data or towers; choose another --out or delete it")
    write_text_atomic(stamp, json.dumps(made_from, indent=2) + "\n")


def _cell(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * spread:.1f}"


def table(results: dict[str, list[RunResult]], seeds: list[int]) -> str:
    """Markdown: per variant mean ± std of each metric and the paired difference against the baseline."""
    base = results["baseline"]
    head = ("| variant | top-1 | object pairs | paired Δ top-1 | paired Δ pairs (min) | probe of F_g: object on the "
            "pairs | on the incidental classes | training min |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for name, runs in results.items():
        delta = [r.top1 - b.top1 for r, b in zip(runs, base, strict=True)]
        delta_pair = [r.pair_top1 - b.pair_top1 for r, b in zip(runs, base, strict=True)]
        paired = "—" if name == "baseline" else _cell(delta)
        paired_pair = "—" if name == "baseline" else f"{_cell(delta_pair)} ({100 * min(delta_pair):+.1f})"
        lines.append(f"| {name} | {_cell([r.top1 for r in runs])} | {_cell([r.pair_top1 for r in runs])} | "
                     f"{paired} | {paired_pair} | {_cell([r.probe_pairs for r in runs])} | "
                     f"{_cell([r.probe_incidental for r in runs])} | "
                     f"{statistics.median(r.train_seconds for r in runs) / 60:.1f} |")
    per_seed = ["", "Per seed, top-1 (object pairs):", "", "| variant | " + " | ".join(f"seed {s}" for s in seeds)
                + " |", "|---|" + "---|" * len(seeds)]
    for name, runs in results.items():
        per_seed.append(f"| {name} | " + " | ".join(f"{100 * r.top1:.1f} ({100 * r.pair_top1:.1f})" for r in runs)
                        + " |")
    return "\n".join(lines + per_seed) + "\n"


def publish(path: Path, header: str, results: dict[str, list[RunResult]], seeds: list[int]) -> None:
    """Write the :func:`table` of ``results`` under ``header`` to ``path``, and print it."""
    text = header + table(results, seeds)
    write_text_atomic(path, text)
    print("\n" + text)


def custom_variant(text: str) -> Variant:
    """``NAME=YAML`` → a row training the demo's model with that one helper."""
    name, sep, helper = text.partition("=")
    if not sep or not name.strip() or not helper.strip():
        raise InputError(f"--helper {text!r}: expected NAME=YAML, e.g. 'distill={{type: mypkg.Distill, weight: 1}}'")
    return helper_variant(name.strip(), helper.strip())


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5],
                        help="training seeds (default: 1 2 3 4 5)")
    parser.add_argument("--split", choices=("val", "test"), default="test",
                        help="where runs are scored (default: %(default)s)")
    parser.add_argument("--variants", nargs="+", default=[v.name for v in VARIANTS],
                        help="the rows to run, by name (default: all: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="runs trained at once, one thread each (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("bench/out/demo_ablation"),
                        help="folder of the runs, reused by a later bench, and the table (default: %(default)s)")
    parser.add_argument("--helper", nargs="+", default=[], metavar="NAME=YAML",
                        help="a row of your own: the YAML of one mmcl.helpers entry, HELD standing for the "
                             "held-object store (default: none)")
    parser.add_argument("--train-args", default="", metavar="ARGS",
                        help="main_mmcl.py options added to every run, e.g. '--num-epoch 30' (default: none, "
                             "the demo's recipe)")
    args = parser.parse_args(argv)
    variants = [v for v in VARIANTS if v.name in args.variants] + [custom_variant(text) for text in args.helper]
    if variants[0].name != "baseline":
        variants.insert(0, VARIANTS[0])
    start = time.perf_counter()
    stores = run_demo.prepare_inputs()
    train_args = shlex.split(args.train_args)
    made_from = {**run_demo.made_from("pretrained"), **({"train_args": train_args} if train_args else {})}
    claim_out(args.out, made_from)  # before anything of the bench's own is written
    stores["oracle"], stores["held"] = oracle_stores(), held_store()
    jobs = [(variant, seed) for seed in args.seeds for variant in variants]
    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(lambda job: run(*job, args.split, stores, args.out, train_args), jobs))
    results = {v.name: [done[jobs.index((v, s))] for s in args.seeds] for v in variants}
    minutes = (time.perf_counter() - start) / 60
    recipe = f", recipe: the demo's {' '.join(train_args)}" if train_args else ""
    header = (f"Demo ablation on the {args.split} split, seeds {args.seeds}{recipe}: last-epoch top-1 % of the "
              f"skeleton-only model, mean ± std over seeds ({minutes:.0f} min, {args.jobs} jobs)\n\n")
    publish(args.out / f"table_{args.split}.md", header, results, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
