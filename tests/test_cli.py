"""The command line end to end on tiny synthetic data: train, test, resume, and bad input."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import main_mmcl
from model.ctrgcn import Model
from tests.conftest import NUM_CLASS


def _run(argv: list[str]) -> int:
    return main_mmcl.main([str(a) for a in argv])


def test_train_then_test_writes_the_family_files(tmp_path, make_config, capsys):
    config = make_config(tmp_path)
    assert _run(["--config", config]) == 0
    work = tmp_path / "run"
    results = json.loads((work / "results.json").read_text())
    assert results["last"]["epoch"] == 2
    assert results["evaluations"] == 2 and "of 2 evaluations (every 1 epoch(s))" in results["note"]
    for name in ("config.yaml", "log.txt", "last.pt", "best.pt", "runs-2-6.pt", "epoch2_test_score.pkl",
                 "epoch2_test_score.npz", "epoch2_test_each_class_acc.csv", "epoch2_test_right.txt",
                 "epoch2_test_wrong.txt"):
        assert (work / name).is_file(), name
    assert list((work / "tensorboard").glob("events.out.tfevents.*"))
    assert (work / "config.yaml").read_text().startswith("# command line: main_mmcl.py --config")
    log = (work / "log.txt").read_text()
    assert "ignored public config keys: model_saved_name" in log
    assert f"(epoch {results['best']['epoch']}, the best of 2 evaluations)" in log

    with open(work / "epoch2_test_score.pkl", "rb") as handle:
        scores = pickle.load(handle)  # our own file, written by the run above
    assert len(scores) == 12 and all(v.shape == (NUM_CLASS,) for v in scores.values())
    npz = np.load(work / "epoch2_test_score.npz")
    assert list(npz["names"]) == list(scores)
    top1 = float(np.mean(npz["scores"].argmax(1) == npz["labels"]))
    assert abs(top1 - results["last"]["top1"]) < 1e-9
    rows = (work / "epoch2_test_each_class_acc.csv").read_text().splitlines()
    assert rows[0].startswith("class,accuracy,support,pred_0") and len(rows) == NUM_CLASS + 1
    right = (work / "epoch2_test_right.txt").read_text().splitlines()
    wrong = (work / "epoch2_test_wrong.txt").read_text().splitlines()
    assert len(right) + len(wrong) == 12 and len(right) == round(top1 * 12)

    capsys.readouterr()
    # The bare public-style weights file and our full checkpoint both evaluate to the same numbers.
    for weights in ("runs-2-6.pt", "last.pt"):
        assert _run(["--config", config, "--phase", "test", "--weights", work / weights]) == 0
        test_npz = np.load(work / f"test_{Path(weights).stem}_score.npz")
        np.testing.assert_allclose(test_npz["scores"], npz["scores"], rtol=1e-5, atol=1e-5)
    assert f"top-1 {100 * top1:.2f}%" in capsys.readouterr().out


def test_refuses_to_clobber_an_earlier_run(tmp_path, make_config, capsys):
    config = make_config(tmp_path, num_epoch=1)
    assert _run(["--config", config]) == 0
    capsys.readouterr()
    assert _run(["--config", config]) == 2
    assert "holds an earlier run" in capsys.readouterr().err
    assert _run(["--config", config, "--overwrite"]) == 0


def test_resumed_run_matches_an_uninterrupted_one(tmp_path, make_config):
    straight = make_config(tmp_path / "a", num_epoch=3)
    assert _run(["--config", straight]) == 0
    interrupted = make_config(tmp_path / "b", num_epoch=3)
    assert _run(["--config", interrupted, "--num-epoch", "1"]) == 0  # "killed" after one epoch
    assert _run(["--config", interrupted, "--resume"]) == 0
    a = torch.load(tmp_path / "a" / "run" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3 and a["step"] == b["step"]
    histories = [json.loads((tmp_path / run / "run" / "history.json").read_text()) for run in "ab"]
    assert [record["epoch"] for record in histories[1]] == [1, 2, 3]  # the curves span the resume
    assert histories[0][-1]["loss"] == pytest.approx(histories[1][-1]["loss"])
    for key, value in a["model"].items():
        torch.testing.assert_close(value, b["model"][key], rtol=0, atol=0, msg=key)


def test_public_ctrgcn_weights_load_strictly(tmp_path, make_config):
    model = Model(num_class=NUM_CLASS, num_point=25, num_person=2, graph="graph.ntu_rgb_d.Graph", base_channel=8)
    weights = tmp_path / "NTU-public.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, weights)  # DataParallel-style keys
    assert _run(["--config", make_config(tmp_path), "--phase", "test", "--weights", weights]) == 0


@pytest.mark.parametrize("case, expected", [
    ("unknown_key", "unknown config key 'learning_rate'"),
    ("unknown_option", "unknown option '--learning-rate'"),
    ("missing_data", "missing: not found"),
    ("wrong_architecture", "does not fit the configured Model"),
    ("not_a_checkpoint", "not a loadable weights-only torch checkpoint"),
    ("missing_config", "config file not found"),
    ("not_a_switch", "config key 'amp': expected true or false, got 'fast'"),
])
def test_bad_input_is_one_clear_line(tmp_path, make_config, capsys, case, expected):
    config = make_config(tmp_path)
    argv = ["--config", config]
    if case == "unknown_key":
        text = config.read_text() + "learning_rate: 0.1\n"
        config.write_text(text)
    elif case == "unknown_option":
        argv += ["--learning-rate", "0.1"]
    elif case == "not_a_switch":
        argv += ["--amp", "fast"]
    elif case == "missing_data":
        argv += ["--train-feeder-args", f"data_path={tmp_path / 'missing'}"]
    elif case == "wrong_architecture":
        other = Model(num_class=7, num_point=25, num_person=2, graph="graph.ntu_rgb_d.Graph", base_channel=8)
        torch.save(other.state_dict(), tmp_path / "other.pt")
        argv += ["--phase", "test", "--weights", tmp_path / "other.pt"]
    elif case == "not_a_checkpoint":
        (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
        argv += ["--phase", "test", "--weights", tmp_path / "junk.pt"]
    elif case == "missing_config":
        argv = ["--config", tmp_path / "nope.yaml"]
    assert _run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert not (tmp_path / "run" / "last.pt").exists()
