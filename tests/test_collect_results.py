"""tools.collect_results on hand-made work_dirs: the table, the CSV, the test-size warning."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

from tools import collect_results

MODEL_ARGS = {"num_class": 3, "num_point": 25, "num_person": 2, "graph": "graph.ntu_rgb_d.Graph", "base_channel": 8}


def make_run(root: Path, benchmark: str, stream: str, top1: float, test_samples: int) -> Path:
    """A work_dir as a finished run leaves it: ``config.yaml`` (command first) and ``results.json``."""
    folder = root / benchmark / stream
    folder.mkdir(parents=True)
    config = {"model": "ctrgcn", "model_args": MODEL_ARGS, "test_feeder_args": {"window_size": 16}}
    if not stream.startswith("baseline_"):
        config["mmcl"] = {"fam": True, "rgb_features": "features/rgb.npz"}
    command = f"# command line: main_mmcl.py --config config/{benchmark}/{stream}.yaml --seed 1\n"
    (folder / "config.yaml").write_text(command + yaml.safe_dump(config))
    results = {"last": {"top1": top1, "epoch": 65}, "best": {"top1": top1 + 0.01, "epoch": 60},
               "test_samples": test_samples}
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_table_and_csv_of_hand_made_runs(tmp_path, capsys):
    make_run(tmp_path, "ucla", "joint", 0.9, 1484)
    make_run(tmp_path, "ucla", "baseline_joint", 0.85, 1484)
    make_run(tmp_path, "nturgbd-cross-subject", "joint", 0.8, 16487)
    out = tmp_path / "table.csv"
    assert collect_results.main([str(tmp_path), "--csv", str(out), "--markdown", str(tmp_path / "t.md")]) == 0
    printed = capsys.readouterr()
    assert "warning" not in printed.err
    lines = printed.out.splitlines()
    assert lines[0].startswith("| | nturgbd-cross-subject | ucla | params (M) | GMACs |")
    assert "| ctrgcn joint, MMCL | 80.00 (81.00) | 90.00 (91.00) |" in printed.out
    assert "| ctrgcn joint, baseline | not run | 85.00 (86.00) |" in printed.out
    assert (tmp_path / "t.md").read_text() == printed.out
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3 and {row["method"] for row in rows} == {"MMCL", "baseline"}
    assert all(float(row["gmacs"]) > 0 and int(row["parameters"]) > 0 for row in rows)


def test_warns_when_runs_disagree_on_the_test_size(tmp_path, capsys):
    make_run(tmp_path, "ucla", "joint", 0.9, 1484)
    make_run(tmp_path, "ucla", "bone", 0.9, 1000)
    assert collect_results.main([str(tmp_path)]) == 0
    assert "ucla: runs disagree on the test set size" in capsys.readouterr().err


def test_no_results_is_one_line(tmp_path, capsys):
    assert collect_results.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: no results.json under")
