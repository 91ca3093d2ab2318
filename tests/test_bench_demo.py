"""Tests of the co-learning ablation bench: its oracle stores, its table and the folder of its runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import bench_demo
from bench.bench_demo import RunResult, claim_out, oracle_stores, table
from engine.errors import InputError
from feeders.demo_data import generate_demo_dataset, read_held_objects
from feeders.feature_store import FeatureStore
from tools import run_demo


def test_oracle_stores_hold_a_one_hot_of_the_object_in_the_hand(tmp_path: Path, monkeypatch) -> None:
    generate_demo_dataset(tmp_path, num_train_per_class=6, num_test_per_class=1, num_val_per_class=1,
                          max_frames=20, with_rgb=False)
    monkeypatch.setattr(run_demo, "DATA", tmp_path)
    monkeypatch.setattr(run_demo, "FEATURES", tmp_path / "features")
    stores = oracle_stores()
    held = read_held_objects(tmp_path, "train")
    for kind in ("rgb", "text"):
        store = FeatureStore(stores[kind], kind)
        features = store.gather(store.rows_for(list(held)))
        assert features.shape == (len(held), len(bench_demo.ORACLE_OBJECTS))
        np.testing.assert_array_equal(features.sum(axis=1), 1.0)
        assert [bench_demo.ORACLE_OBJECTS[i] for i in features.argmax(axis=1)] == list(held.values())
    assert {None, "cup", "phone", "ball"} <= set(held.values())  # the incidental classes carry any object


def test_the_positive_control_reads_the_object_in_the_hand(tmp_path: Path, monkeypatch) -> None:
    generate_demo_dataset(tmp_path, num_train_per_class=6, num_test_per_class=1, num_val_per_class=1,
                          max_frames=20, with_rgb=False)
    monkeypatch.setattr(run_demo, "DATA", tmp_path)
    monkeypatch.setattr(run_demo, "FEATURES", tmp_path / "features")
    stores = {"pretrained": {"rgb": Path("r"), "text": Path("t")}, "held": bench_demo.held_store()}
    store = FeatureStore(stores["held"]["attribute"], "attribute")
    held = read_held_objects(tmp_path, "train")
    assert store.check(list(held)).startswith("attribute feature store")
    classes = store.meta["classes"]
    assert [classes[int(i)] for i in store.gather(store.rows_for(list(held)))[:, 0]] == [o or "none" for o in held.values()]
    control = next(v for v in bench_demo.VARIANTS if v.name == "positive control")
    argv = control.argv(stores)
    assert argv[:6] == ["--config", bench_demo.MMCL_CONFIG, "--mmcl", "fam=false", "frm=false", "rgb_features=r"]
    assert argv[-1] == (f"helpers={{positive_control: {{type: attribute_head, weight: 1.0, inputs: "
                        f"{{attribute: {stores['held']['attribute']}}}}}}}")
    combined = next(v for v in bench_demo.VARIANTS if v.name == "FRM + FAM, skeleton projection head")
    assert combined.argv(stores)[3:5] == ["fam=false", "frm=true"]
    assert combined.argv(stores)[-1] == "helpers={FAM__skeleton_projection_head: {type: fam_projected, weight: 0.1}}"
    mine = bench_demo.custom_variant("my distill={type: mypkg.Distill, weight: 0.5}")
    assert mine.argv(stores)[-1] == "helpers={my_distill: {type: mypkg.Distill, weight: 0.5}}"
    with pytest.raises(InputError, match="expected NAME=YAML"):
        bench_demo.custom_variant("just-a-name")


def test_table_gives_means_and_paired_differences_against_the_baseline() -> None:
    def runs(*pairs: tuple[float, float]) -> list[RunResult]:
        return [RunResult(top1, pair, 0.5, pair, 0.5, 60.0 * (i + 1)) for i, (top1, pair) in enumerate(pairs)]

    results = {"baseline": runs((0.80, 0.50), (0.90, 0.70)), "FAM (oracle)": runs((0.84, 0.65), (0.88, 0.65))}
    summary = table(results, [1, 2]).split("\n\n")[0]  # the per-seed table follows
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in summary.splitlines()}
    assert rows["baseline"][1:3] == ["85.0 ± 7.1", "60.0 ± 14.1"]
    assert rows["FAM (oracle)"][3] == "1.0 ± 4.2"  # Δ top-1: +4 and -2 points
    assert rows["FAM (oracle)"][4] == "5.0 ± 14.1 (-5.0)"  # Δ pairs: +15 and -5 points, worst -5
    assert rows["FAM (oracle)"][1:3] == ["86.0 ± 2.8", "65.0 ± 0.0"]
    assert rows["FAM (oracle)"][7] == "1.5 |"  # the median training time: 1 and 2 minutes


def test_out_folder_keeps_runs_of_one_set_of_inputs(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    claim_out(out, {"demo": 1})
    (out / "runs").mkdir()
    claim_out(out, {"demo": 1})  # the same inputs: the finished runs are reused
    with pytest.raises(InputError, match="other demo data or towers"):
        claim_out(out, {"demo": 2})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a bench_demo folder"):
        claim_out(tmp_path / "other", {"demo": 1})
