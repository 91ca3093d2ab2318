"""DDP on the CPU: torchrun with two gloo processes trains, shards evaluation and gathers every sample."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path, make_config, dataset_dir):
    config = make_config(tmp_path, num_epoch=1, batch_size=4, mmcl={"frm": False})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(29600 + os.getpid() % 300), str(ROOT / "main_mmcl.py"), "--config", str(config)]
    result = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    work = tmp_path / "run"
    assert "rank 0 of 2 on cpu (gloo)" in (work / "log.txt").read_text()
    scores = np.load(work / "epoch1_test_score.npz")
    expected = (dataset_dir / "test_names.txt").read_text().splitlines()
    assert list(scores["names"]) == expected  # both ranks' shares, back in dataset order
    results = json.loads((work / "results.json").read_text())
    assert results["last"]["top1"] == pytest.approx(float(np.mean(scores["scores"].argmax(1) == scores["labels"])))
