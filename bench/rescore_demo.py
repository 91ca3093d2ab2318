"""Rescore a co-learning table on a larger sample of its split: the same trained runs, less evaluation noise.

    python -m bench.rescore_demo --out bench/out/table_bone_e8 [--split test] [--per-class 200]
                                 [--seeds 1 2 3 4 5] [--variants baseline "positive control" ...]

The demo's test and val splits hold 20 samples per class, 80 on the object pairs: one sample moves a pair
accuracy by 1.25 points, and its binomial noise alone is about ±5 points. This command regenerates the split
with ``--per-class`` samples per class from the same generator, seed and arguments (without RGB strips): the
training split is unchanged and the first 20 samples per class are the split's own (checked), so it is a
larger sample of the same performers' distribution, not another task. It evaluates the last checkpoint of
every finished run of ``bench.bench_demo --out OUT`` on it (test-time transform, skeleton only) and writes the
same table (top-1 overall and on the pairs, paired Δ against the baseline, probes of F_g) to
``OUT/table_<split>_<per-class>_per_class.md``. Nothing is trained and no setting is chosen here: it measures
the runs of a table, it does not pick among them. Per-run results are kept and reused.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.bench_demo import STAMP, VARIANTS, RunResult, probe, publish, run_dir, split_outputs, top1
from engine.errors import InputError, command
from engine.fileio import cached_json, write_text_atomic
from feeders.demo_data import MANIFEST, generate_demo_dataset
from tools import run_demo
from tools.make_demo_data import holds_generation


def larger_split(out: Path, split: str, per_class: int) -> Path:
    """The demo data of the bench folder ``out`` regenerated with ``per_class`` samples per class in ``split``
    (made unless already there), after checking that its ``split`` starts with the demo's own."""
    made_from = cached_json(out / STAMP)
    if made_from is None:
        raise InputError(f"{out}: not a bench_demo folder (no {STAMP}); run python -m bench.bench_demo --out {out}")
    demo = cached_json(run_demo.DATA / MANIFEST)
    if demo != made_from["demo"]:
        raise InputError(f"{out}: its runs were trained on other demo data than {run_demo.DATA}; remake that data")
    args = {**demo["args"], f"num_{split}_per_class": per_class, "with_rgb": False}
    if per_class <= demo["args"][f"num_{split}_per_class"]:
        raise InputError(f"--per-class {per_class}: the {split} split already holds "
                         f"{demo['args'][f'num_{split}_per_class']} per class; ask for more")
    folder = out / f"rescore_{split}_{per_class}"
    if not holds_generation(folder, args):
        generate_demo_dataset(folder, **args)
    own, larger = (np.load(root / f"{split}_data.npy", mmap_mode="r") for root in (run_demo.DATA, folder))
    own_names, larger_names = ((root / f"{split}_names.txt").read_text().split() for root in (run_demo.DATA, folder))
    if larger_names[:len(own_names)] != own_names or not np.array_equal(own, larger[:len(own)]):
        raise InputError(f"{folder}: its {split} split does not start with that of {run_demo.DATA}; delete the folder")
    return folder


def rescore(work_dir: Path, split: str, data: Path, per_class: int) -> RunResult:
    """One finished run's result on the larger split (kept in the run's folder and reused)."""
    summary = work_dir / f"rescore_{split}_{per_class}.json"
    kept = cached_json(summary)
    if kept is not None:
        return RunResult(**kept)
    trained = cached_json(work_dir / "bench.json")
    if trained is None:
        raise InputError(f"{work_dir}: not a finished bench_demo run (no bench.json); run bench.bench_demo first")
    train, evaluated = split_outputs(work_dir, ("train", split), data)  # the training split is the demo's own
    result = RunResult(*top1(evaluated.scores, evaluated.labels), *probe(train, evaluated), trained["train_seconds"])
    write_text_atomic(summary, json.dumps(result.__dict__) + "\n")
    return result


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the bench_demo folder whose runs are rescored")
    parser.add_argument("--split", choices=("val", "test"), default="test",
                        help="the split the runs were scored on (default: %(default)s)")
    parser.add_argument("--per-class", type=int, default=200,
                        help="samples per class of the larger split (default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5],
                        help="training seeds (default: 1 2 3 4 5)")
    parser.add_argument("--variants", nargs="+", default=None,
                        help="the rows, by name (default: every row of bench_demo with a finished run per seed)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    names = args.variants or [v.name for v in VARIANTS if all(
        (run_dir(args.out, args.split, v.name, seed) / "bench.json").is_file() for seed in args.seeds)]
    names = ["baseline", *(name for name in names if name != "baseline")]
    data = larger_split(args.out, args.split, args.per_class)
    results = {name: [rescore(run_dir(args.out, args.split, name, seed), args.split, data, args.per_class)
                      for seed in args.seeds] for name in names}
    header = (f"The runs of {args.out} rescored on {args.per_class} {args.split} samples per class ({data}), seeds "
              f"{args.seeds}: last-epoch top-1 % of the skeleton-only model, mean ± std over seeds; training "
              f"minutes are those of the runs ({(time.perf_counter() - start) / 60:.0f} min to rescore)\n\n")
    publish(args.out / f"table_{args.split}_{args.per_class}_per_class.md", header, results, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
