"""Does co-learning help the skeleton-only model? Baseline vs MMCL on the embedded demo, several seeds.

    python -m bench.bench_demo [--seeds 1 2 3]

Needs the demo data and features (``python -m tools.run_demo`` makes them). For each seed, trains
``config/demo/baseline_joint.yaml`` and ``config/demo/joint.yaml`` through the real command, then reports
the last-epoch test top-1 of the skeleton-only model, overall and on the two object pairs (drink vs touch
mouth, phone call vs touch ear), whose skeletons differ only by a subtle cue the RGB strips and answers show.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
from pathlib import Path

import main_mmcl

CONFIGS = {"baseline": "config/demo/baseline_joint.yaml", "MMCL": "config/demo/joint.yaml"}
PAIR_CLASSES = (0, 1, 2, 3)


def run(config: str, seed: int, work_dir: Path) -> tuple[float, float]:
    """Train one config with one seed; return (top-1, top-1 on the object-pair classes) of the last epoch."""
    assert main_mmcl.main(["--config", config, "--seed", str(seed), "--work-dir", str(work_dir)]) == 0
    results = json.loads((work_dir / "results.json").read_text())
    epoch = results["last"]["epoch"]
    with open(work_dir / f"epoch{epoch}_test_each_class_acc.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    pair_right = sum(float(rows[c]["accuracy"]) * int(rows[c]["support"]) for c in PAIR_CLASSES)
    pair_total = sum(int(rows[c]["support"]) for c in PAIR_CLASSES)
    return results["last"]["top1"], pair_right / pair_total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args(argv)
    table: dict[str, list[tuple[float, float]]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for name, config in CONFIGS.items():
                table[name].append(run(config, seed, Path(tmp) / f"{name}-{seed}"))
    print(f"\n{'model':10s} " + " ".join(f"{'seed ' + str(s):>14s}" for s in args.seeds) + f" {'mean':>14s}")
    for name, runs in table.items():
        cells = [f"{100 * top1:5.1f} ({100 * pair:5.1f})" for top1, pair in runs]
        mean = f"{100 * statistics.mean(r[0] for r in runs):5.1f} ({100 * statistics.mean(r[1] for r in runs):5.1f})"
        print(f"{name:10s} " + " ".join(f"{c:>14s}" for c in cells) + f" {mean:>14s}")
    print("cells: last-epoch test top-1 % (top-1 % on the four object-pair classes)")


if __name__ == "__main__":
    main()
