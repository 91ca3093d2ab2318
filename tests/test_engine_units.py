"""Engine pieces on their own: schedule, metrics, config parsing, atomic files, checkpoint state."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from engine.checkpoint import resume_position, rng_state, set_rng_state
from engine.config import resolve_config
from engine.errors import InputError
from engine.fileio import atomic_path
from engine.metrics import confusion_matrix, per_class_accuracy, topk_accuracy
from engine.schedule import learning_rate


def test_warm_up_then_step_decay():
    config = {"base_lr": 0.1, "warm_up_epoch": 5, "step": [35, 55], "lr_decay_rate": 0.1}
    lrs = [learning_rate(e, config) for e in (0, 4, 5, 34, 35, 54, 55, 64)]
    np.testing.assert_allclose(lrs, [0.02, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_topk_and_confusion():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.6, 0.3], [0.5, 0.4, 0.1]])
    labels = np.array([0, 1, 1, 2])
    assert topk_accuracy(scores, labels, 1) == 0.5
    assert topk_accuracy(scores, labels, 2) == 0.75
    assert topk_accuracy(scores, labels, 3) == 1.0
    confusion = confusion_matrix(scores.argmax(1), labels, 3)
    np.testing.assert_array_equal(confusion, [[1, 0, 0], [0, 1, 1], [1, 0, 0]])
    np.testing.assert_allclose(per_class_accuracy(confusion), [1.0, 0.5, 0.0])
    assert np.isnan(per_class_accuracy(np.zeros((2, 2), int))).all()


def test_overrides_take_yaml_types_and_merge_dicts(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train_feeder_args: {data_path: a, window_size: 64}\nstep: [35, 55]\nprint_log: true\n")
    config = resolve_config(["--config", str(path), "--train-feeder-args", "window_size=32", "bone=true",
                             "--base-lr", "0.05", "--step", "30", "40", "--device", "0", "1"])
    assert config["train_feeder_args"] == {"data_path": "a", "window_size": 32, "bone": True}
    repeated = resolve_config(["--config", str(path), "--train-feeder-args", "bone=true", "--train-feeder-args",
                               "window_size=16"])  # as a script adding its own overrides to a user's
    assert repeated["train_feeder_args"] == {"data_path": "a", "window_size": 16, "bone": True}
    assert config["base_lr"] == 0.05 and config["step"] == [30, 40] and config["device"] == [0, 1]
    assert config["ignored_keys"] == ["print_log"]
    with pytest.raises(InputError, match="config key 'batch_size'"):
        resolve_config(["--batch-size", "-3"])
    path.write_text("- not\n- a mapping\n")
    with pytest.raises(InputError, match="must be a mapping"):
        resolve_config(["--config", str(path)])


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_rng_state_round_trip_through_a_weights_only_file(tmp_path):
    state = rng_state()
    torch.save(state, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_a_position_inside_an_epoch_holds_only_for_the_same_batches():
    state = {"epoch": 3, "batch": 5, "config": {"batch_size": 16}, "loader": {"batch_size": 8, "world_size": 2}}
    assert resume_position(state, {"batch_size": 8, "world_size": 2}) == (5, None)
    first, note = resume_position(state, {"batch_size": 16, "world_size": 1})
    assert first == 0 and note == ("the checkpoint stopped after batch 5 of epoch 4, loading batches of 8 on 2 "
                                   "process(es); this run loads batches of 16 on 1: the epoch restarts from its first "
                                   "batch (its first 5 batches trained on again)")
    assert resume_position({**state, "batch": 0}, {"batch_size": 16, "world_size": 1}) == (0, None)  # an epoch's end
    older = {"epoch": 3, "batch": 5, "config": {"batch_size": 16}}  # saved before the record: its config's batch
    assert resume_position(older, {"batch_size": 16, "world_size": 1}) == (5, None)
    assert resume_position(older, {"batch_size": 8, "world_size": 1})[0] == 0
