"""DDP on the CPU: torchrun with two gloo processes trains, shards evaluation and gathers every sample; the two
processes that ``--device cpu cpu`` spawns by itself (splitting each batch) train to the same weights and
evaluate the model they save; a failing rank is one line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from main_mmcl import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=False, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_torchrun_and_spawned_processes_train_alike(tmp_path, make_config, dataset_dir):
    config = make_config(tmp_path, num_epoch=1, batch_size=4, mmcl={"frm": False})
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",  # free port
                str(ROOT / "main_mmcl.py"), "--config", str(config)]
    result = _run(torchrun)
    assert result.returncode == 0, result.stderr[-2000:]
    work = tmp_path / "run"
    assert "rank 0 of 2 on cpu (gloo)" in (work / "log.txt").read_text()
    scores = np.load(work / "epoch1_test_score.npz")
    expected = (dataset_dir / "test_names.txt").read_text().splitlines()
    assert list(scores["names"]) == expected  # both ranks' shares, back in dataset order
    results = json.loads((work / "results.json").read_text())
    assert results["last"]["top1"] == pytest.approx(float(np.mean(scores["scores"].argmax(1) == scores["labels"])))

    spawned = tmp_path / "spawned"  # the two processes split each batch, as DataParallel: twice torchrun's sizes
    result = _run([sys.executable, str(ROOT / "main_mmcl.py"), "--config", str(config), "--device", "cpu", "cpu",
                   "--batch-size", "8", "--test-batch-size", "10", "--work-dir", str(spawned)])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rank 0 of 2 on cpu (gloo), spawned" in (spawned / "log.txt").read_text()
    weights = [torch.load(w / "last.pt", map_location="cpu", weights_only=True)["model"] for w in (work, spawned)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        torch.testing.assert_close(weights[1][name], weights[0][name], rtol=0, atol=0, msg=name)
    np.testing.assert_array_equal(np.load(spawned / "epoch1_test_score.npz")["scores"], scores["scores"])
    assert json.loads((spawned / "results.json").read_text())["last"] == results["last"]


@pytest.mark.slow
def test_every_rank_evaluates_the_model_that_is_saved(tmp_path, make_config):
    # each rank's last steps update its own BatchNorm statistics; rank 0's are saved, and every rank must score
    # its share of the test samples with those (rank 1 scores the odd ones)
    config = make_config(tmp_path, num_epoch=1, test_batch_size=2)  # one test sample a batch in each process
    result = _run([sys.executable, str(ROOT / "main_mmcl.py"), "--config", str(config), "--device", "cpu", "cpu"])
    assert result.returncode == 0, result.stderr[-2000:]
    work, tested = tmp_path / "run", tmp_path / "tested"
    result = _run([sys.executable, str(ROOT / "main_mmcl.py"), "--config", str(config), "--phase", "test",
                   "--weights", str(work / "last.pt"), "--test-batch-size", "1", "--work-dir", str(tested)])
    assert result.returncode == 0, result.stderr[-2000:]
    during, after = np.load(work / "epoch1_test_score.npz"), np.load(tested / "test_last_score.npz")
    assert list(during["names"]) == list(after["names"])
    np.testing.assert_array_equal(during["scores"], after["scores"])


def test_a_failing_spawned_rank_is_one_line_and_writes_nothing(tmp_path, make_config, capsys):
    config = make_config(tmp_path, num_epoch=1)
    status = main(["--config", str(config), "--device", "cpu", "cpu", "--weights", str(tmp_path / "missing.pt")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "missing.pt" in lines[0]
    assert not (tmp_path / "run").exists()


def test_a_batch_that_does_not_split_over_the_devices_is_refused(tmp_path, make_config, capsys):
    config = make_config(tmp_path, batch_size=5)
    assert main(["--config", str(config), "--device", "cpu", "cpu"]) == 2
    assert "error: batch_size 5: --device cpu cpu splits each batch over 2 processes" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("device, problem", [(["cpu", 0], "expected CUDA ids"), ([-1], "expected CUDA ids")])
def test_device_lists_mixing_cpu_and_ids_are_refused(tmp_path, make_config, capsys, device, problem):
    config = make_config(tmp_path, device=device)
    assert main(["--config", str(config)]) == 2
    assert problem in capsys.readouterr().err


def test_parallel_must_be_ddp_or_dp(tmp_path, make_config, capsys):
    assert main(["--config", str(make_config(tmp_path)), "--parallel", "horovod"]) == 2
    assert "'parallel': expected ddp or dp" in capsys.readouterr().err
