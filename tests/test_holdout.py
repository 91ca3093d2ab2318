"""Held-out samples: names files, feeder selection by name, tools.make_holdout, and the train / score workflow."""
from __future__ import annotations

import re

import numpy as np
import pytest

import main_mmcl
from engine.errors import InputError
from feeders.ntu import NTUFeeder
from feeders.subset import selected_rows
from feeders.ucla import UCLAFeeder
from tests.test_feeders import expected_ucla_test_sample, write_ucla
from tools import make_holdout

NAMES = ["a", "b", "c", "d", "e"]


def test_selected_rows_keep_then_exclude_in_split_order(tmp_path):
    (tmp_path / "keep.txt").write_text("# a comment\nd\n\nb\n c \n")
    (tmp_path / "drop.txt").write_text("c\n")
    assert selected_rows(NAMES).tolist() == [0, 1, 2, 3, 4]
    assert selected_rows(NAMES, tmp_path / "keep.txt").tolist() == [1, 2, 3]
    assert selected_rows(NAMES, tmp_path / "keep.txt", tmp_path / "drop.txt").tolist() == [1, 3]
    assert selected_rows(NAMES, exclude_names_file=tmp_path / "drop.txt").tolist() == [0, 1, 3, 4]
    (tmp_path / "other.txt").write_text("b\nzz\nyy\n")
    with pytest.raises(InputError, match=r"other\.txt: 2 listed samples are not in the split \(first: yy\)"):
        selected_rows(NAMES, tmp_path / "other.txt")
    (tmp_path / "all.txt").write_text("\n".join(NAMES))
    with pytest.raises(InputError, match="no sample of the split is left"):
        selected_rows(NAMES, exclude_names_file=tmp_path / "all.txt")
    with pytest.raises(InputError, match=r"nope\.txt: cannot read the names file"):
        selected_rows(NAMES, tmp_path / "nope.txt")


def test_ntu_feeder_selects_by_name(dataset_dir, tmp_path):
    full = NTUFeeder(str(dataset_dir), "train", window_size=16, p_interval=[0.95])
    (tmp_path / "keep.txt").write_text("\n".join(full.sample_name[i] for i in (7, 2, 11)))
    kept = NTUFeeder(str(dataset_dir), "train", window_size=16, p_interval=[0.95], names_file=str(tmp_path / "keep.txt"))
    assert kept.sample_name == [full.sample_name[i] for i in (2, 7, 11)]
    np.testing.assert_array_equal(kept.label, full.label[[2, 7, 11]])
    for index, row in enumerate((2, 7, 11)):
        np.testing.assert_array_equal(kept[index][0], full[row][0])
    rest = NTUFeeder(str(dataset_dir), "train", window_size=16, exclude_names_file=str(tmp_path / "keep.txt"))
    assert len(rest) == len(full) - 3 and not set(rest.sample_name) & set(kept.sample_name)


def test_ucla_feeder_selects_by_name_and_augment_switch(tmp_path):
    samples = write_ucla(tmp_path / "ucla")
    train = UCLAFeeder(str(tmp_path / "ucla"), "train")
    (tmp_path / "keep.txt").write_text(train.sample_name[4] + "\n")
    held = UCLAFeeder(str(tmp_path / "ucla"), "train", window_size=10, augment=False,
                      names_file=str(tmp_path / "keep.txt"))  # fmt: skip
    assert held.sample_name == [train.sample_name[4]] and len(held) == 1
    expected = expected_ucla_test_sample(samples[held.sample_name[0]][0], 10)
    np.testing.assert_allclose(held[0][0], expected, atol=1e-6)  # scored as a test sample: no random draws
    assert UCLAFeeder(str(tmp_path / "ucla"), "test", augment=True).augment


def test_make_holdout_by_subject_and_by_sample(dataset_dir, tmp_path, capsys):
    out = tmp_path / "holdout.txt"
    assert make_holdout.main(["--data", str(dataset_dir), "--fraction", "0.25", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# held out of") and "--by subject --fraction 0.25 --seed 0" in lines[0]
    held = lines[1:]
    train = NTUFeeder(str(dataset_dir), "train")
    assert held == [name for name in train.sample_name if name in held]  # split row order
    assert len(held) == 6  # each tiny sample has its own performer: 25 % of 24 samples
    performers = {re.search(r"P(\d{3})", name).group(1) for name in held}
    rest = {re.search(r"P(\d{3})", name).group(1) for name in train.sample_name if name not in held}
    assert performers and not performers & rest
    assert make_holdout.make_holdout(dataset_dir, "train", 0.25, "subject", 0) == held  # seeded
    assert make_holdout.make_holdout(dataset_dir, "train", 0.25, "subject", 1) != held

    by_sample = make_holdout.make_holdout(dataset_dir, "train", 0.25, "sample", 0)
    labels = dict(zip(train.sample_name, train.label.tolist()))
    assert sorted(np.bincount([labels[name] for name in by_sample]).tolist()) == [2, 2, 2]  # 25 % of 8 per class

    assert make_holdout.main(["--data", str(dataset_dir), "--out", str(out)]) == 2
    assert make_holdout.main(["--data", str(dataset_dir), "--fraction", "1.5", "--out", str(tmp_path / "x")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors == [f"error: {out} exists: pass --overwrite to replace it",
                      "error: --fraction must be between 0 and 1, got 1.5"]  # fmt: skip


def test_make_holdout_on_ucla_json_and_foreign_names(tmp_path):
    write_ucla(tmp_path / "ucla", per_view=3)
    held = make_holdout.make_holdout(tmp_path / "ucla", "train", 0.3, "sample", 0)
    assert len(held) == 3 and all(name.endswith(("v01", "v02")) for name in held)
    with pytest.raises(InputError, match="only subject 1"):
        make_holdout.make_holdout(tmp_path / "ucla", "train", 0.3, "subject", 0)
    with pytest.raises(InputError, match="use --by sample"):
        make_holdout.held_out_by_subject(["clip_1", "clip_2"], 0.5, np.random.default_rng(0))


def test_train_without_the_held_out_part_then_score_it(dataset_dir, make_config, tmp_path):
    """The documented workflow: exclude the held-out names from training, score them with the test phase."""
    holdout = tmp_path / "holdout.txt"
    assert make_holdout.main(["--data", str(dataset_dir), "--fraction", "0.25", "--out", str(holdout)]) == 0
    held = holdout.read_text().splitlines()[1:]
    config = str(make_config(tmp_path, num_epoch=1))
    train = ["--config", config, "--train-feeder-args", f"exclude_names_file={holdout}"]
    assert main_mmcl.main(train) == 0
    work = tmp_path / "run"
    score = ["--config", config, "--phase", "test", "--weights", str(work / "last.pt"),
             "--test-feeder-args", "split=train", f"names_file={holdout}"]  # fmt: skip
    assert main_mmcl.main(score) == 0
    scores = np.load(work / "test_last_score.npz")
    assert list(scores["names"]) == held and scores["scores"].shape == (len(held), 3)
    log = (work / "log.txt").read_text()
    assert f"train {24 - len(held)} samples, test 12 samples" in log  # the held-out part was not trained on
