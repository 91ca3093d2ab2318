"""Evaluation pictures and training curves: written by a run, of the expected size, not blank."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import main_mmcl
from engine.metrics import confusion_matrix
from engine.plots import confused_pairs, write_evaluation_pictures
from feeders.class_names import ntu_class_names


def assert_picture(path: Path, min_side: int = 250) -> None:
    """``path`` is a PNG of at least ``min_side`` pixels a side whose pixels vary."""
    image = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    assert min(image.shape) >= min_side
    assert image.var() > 10


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset_dir) -> Path:
    from tests.conftest import write_config

    folder = tmp_path_factory.mktemp("plots")
    assert main_mmcl.main(["--config", str(write_config(folder, dataset_dir))]) == 0
    return folder / "run"


def test_training_leaves_curves_and_last_evaluation_pictures(trained):
    assert_picture(trained / "curves.png")
    for name in ("epoch2_test_confusion.png", "epoch2_test_class_acc.png"):
        assert_picture(trained / name)
    assert not (trained / "epoch1_test_confusion.png").exists()  # only the last evaluation is drawn
    history = json.loads((trained / "history.json").read_text())
    assert [record["epoch"] for record in history] == [1, 2]
    assert {"loss_ce", "lr", "acc", "seconds", "test_top1"} <= set(history[-1])
    results = json.loads((trained / "results.json").read_text())
    assert results["model"] == "ctrgcn" and results["mmcl"] is False
    assert results["test_samples"] == 12 and results["parameters"] > 0


def test_phase_test_draws_and_plots_false_does_not(trained, tmp_path):
    common = ["--config", str(trained / "config.yaml"), "--phase", "test", "--weights", str(trained / "best.pt")]
    assert main_mmcl.main([*common, "--work-dir", str(tmp_path / "a")]) == 0
    assert_picture(tmp_path / "a" / "test_best_confusion.png")
    assert (tmp_path / "a" / "test_best_confused_pairs.txt").exists()
    assert main_mmcl.main([*common, "--work-dir", str(tmp_path / "b"), "--plots", "false"]) == 0
    assert not list((tmp_path / "b").glob("*.png"))


def test_120_class_pictures_are_large_readable_and_quick(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 120, 3000)
    predictions = np.where(rng.random(3000) < 0.7, labels, (labels + 1) % 120)
    write_evaluation_pictures(tmp_path, "x", confusion_matrix(predictions, labels, 120), ntu_class_names(120))
    assert_picture(tmp_path / "x_confusion.png", min_side=1000)
    assert_picture(tmp_path / "x_class_acc.png", min_side=600)
    lines = (tmp_path / "x_confused_pairs.txt").read_text().splitlines()
    assert len(lines) == 10 and " -> " in lines[0]


def test_confused_pairs_are_the_largest_off_diagonal_cells():
    confusion = np.array([[5, 3, 0], [1, 4, 0], [0, 0, 2]])
    assert confused_pairs(confusion) == [(0, 1, 3, 3 / 8), (1, 0, 1, 1 / 5)]
