"""Share of a training epoch spent waiting for data, through the real training command.

    python -m bench.bench_epoch [--quick]

Writes a synthetic NTU-shaped prepared dataset (T=300, 2 persons, 60-300 valid frames), trains the full
CTR-GCN (joint stream, batch 16, window 64, random rotation) for one epoch with 0 and 2 loader workers,
and prints the data-loading share the run measured (time blocked on the loader / epoch time).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import yaml

import main_mmcl
from feeders.prepared import write_prepared_split


def synthetic_ntu(root: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("test", 16)):
        data = np.zeros((count, 3, 300, 25, 2), np.float32)
        for i, length in enumerate(rng.integers(60, 301, count)):
            data[i, :, :length] = rng.standard_normal((3, length, 25, 2)).astype(np.float32)
        write_prepared_split(root, split, data, rng.integers(0, 60, count), [f"{split}{i}" for i in range(count)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 samples instead of 160 (default: 160)")
    args = parser.parse_args(argv)
    n = 64 if args.quick else 160
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthetic_ntu(root / "data", n)
        feeder = {"data_path": str(root / "data"), "window_size": 64}
        print(f"{'loader workers':>15s} {'epoch s':>8s} {'data share':>11s}")
        for workers in (0, 2):
            config = {"work_dir": str(root / f"run{workers}"), "feeder": "ntu", "num_worker": workers,
                      "train_feeder_args": {**feeder, "split": "train", "p_interval": [0.5, 1], "random_rot": True},
                      "test_feeder_args": {**feeder, "split": "test", "p_interval": [0.95]},
                      "model_args": {"num_class": 60, "graph": "graph.ntu_rgb_d.Graph"},
                      "batch_size": 16, "num_epoch": 1, "warm_up_epoch": 1, "save_epoch": 2}
            (root / "config.yaml").write_text(yaml.safe_dump(config))
            main_mmcl.main(["--config", str(root / "config.yaml")])
            results = json.loads((root / f"run{workers}" / "results.json").read_text())["last_epoch_train"]
            print(f"{workers:>15d} {results['seconds']:8.1f} {100 * results['data_share']:10.2f}%")


if __name__ == "__main__":
    main()
