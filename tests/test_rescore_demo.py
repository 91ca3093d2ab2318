"""Tests of rescoring a co-learning table on a larger sample of its split (bench/rescore_demo.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import main_mmcl
from bench import rescore_demo
from bench.bench_demo import PAIR_CLASSES, STAMP, run_dir
from engine.errors import InputError
from feeders.demo_data import MANIFEST, generate_demo_dataset
from tools import run_demo


@pytest.fixture
def trained_table(tmp_path: Path, monkeypatch) -> Path:
    """A bench folder on tiny demo data holding one finished baseline run (seed 1, one epoch)."""
    data = tmp_path / "demo"
    generate_demo_dataset(data, num_train_per_class=4, num_test_per_class=2, num_val_per_class=2, max_frames=20,
                          with_rgb=False)
    monkeypatch.setattr(run_demo, "DATA", data)
    out = tmp_path / "bench"
    out.mkdir()
    (out / STAMP).write_text(json.dumps({"demo": json.loads((data / MANIFEST).read_text())}))
    work_dir = run_dir(out, "test", "baseline", 1)
    assert main_mmcl.main([
        "--config", "config/demo/baseline_joint.yaml", "--work-dir", str(work_dir), "--device", "cpu",
        "--train-feeder-args", f"data_path={data}", "window_size=8", "--test-feeder-args", f"data_path={data}",
        "window_size=8", "split=test", "--model-args", "base_channel=8", "--num-epoch", "1", "--step", "1",
        "--warm-up-epoch", "0", "--save-epoch", "1", "--batch-size", "8"]) == 0
    (work_dir / "bench.json").write_text(json.dumps({"top1": 0.5, "pair_top1": 0.5, "probe": 0.5, "probe_pairs": 0.5,
                                                     "probe_incidental": 0.5, "train_seconds": 90.0}))
    return out


def test_rescoring_evaluates_the_runs_on_a_superset_of_their_split(trained_table: Path) -> None:
    out = trained_table
    assert rescore_demo.main(["--out", str(out), "--per-class", "5", "--seeds", "1"]) == 0
    larger = out / "rescore_test_5"
    names = (larger / "test_names.txt").read_text().split()
    assert len(names) == 5 * 12
    assert names[:24] == (run_demo.DATA / "test_names.txt").read_text().split()  # the split's own come first
    np.testing.assert_array_equal(np.load(larger / "train_data.npy"), np.load(run_demo.DATA / "train_data.npy"))

    # The rescored accuracies are those of the real test command on the larger split.
    work_dir = run_dir(out, "test", "baseline", 1)
    assert main_mmcl.main(["--config", str(work_dir / "config.yaml"), "--phase", "test", "--weights",
                           str(work_dir / "last.pt"), "--test-feeder-args", f"data_path={larger}",
                           "--work-dir", str(out / "oracle")]) == 0
    scores = np.load(next((out / "oracle").glob("*_score.npz")))
    right = scores["scores"].argmax(1) == scores["labels"]
    kept = json.loads((work_dir / "rescore_test_5.json").read_text())
    assert kept["top1"] == pytest.approx(right.mean())
    assert kept["pair_top1"] == pytest.approx(right[np.isin(scores["labels"], PAIR_CLASSES)].mean())
    assert kept["train_seconds"] == 90.0
    table = (out / "table_test_5_per_class.md").read_text()
    assert f"| baseline | {100 * right.mean():.1f} ± 0.0 |" in table

    (work_dir / "last.pt").unlink()  # a finished rescore is reused, not recomputed
    assert rescore_demo.main(["--out", str(out), "--per-class", "5", "--seeds", "1"]) == 0


def test_rescoring_refuses_runs_of_other_data_and_a_split_no_larger(trained_table: Path) -> None:
    with pytest.raises(InputError, match="already holds 2 per class"):
        rescore_demo.larger_split(trained_table, "test", 2)
    with pytest.raises(InputError, match="not a finished bench_demo run"):
        rescore_demo.rescore(run_dir(trained_table, "test", "baseline", 2), "test", trained_table, 5)
    stamp = json.loads((trained_table / STAMP).read_text())
    stamp["demo"]["args"]["seed"] = 7
    (trained_table / STAMP).write_text(json.dumps(stamp))
    with pytest.raises(InputError, match="other demo data"):
        rescore_demo.larger_split(trained_table, "test", 5)
