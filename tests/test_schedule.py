"""The learning-rate schedules against the public code's definitions, and in real tiny runs, resumed or not.

Public HD-GCN (Jho-Yonsei/HD-GCN, main.py, ``adjust_learning_rate``), called before every optimiser step with
the epoch and the 0-based batch index ``idx``: ``base_lr·(epoch+1)/warm_up_epoch`` while ``epoch <
warm_up_epoch``, else ``eta_min + ½(base_lr − eta_min)(1 + cos(π·T_cur/T_max))`` with ``eta_min = base_lr·lr_ratio``,
``T_cur = B·(epoch − warm_up_epoch) + idx``, ``T_max = B·(num_epoch − warm_up_epoch)``, ``B`` the batches per epoch.
The expected values below are that definition worked out by hand (cos of multiples of π/6), not recomputed.
"""
from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch

import main_mmcl
from engine.schedule import learning_rate

BASE, RATIO = 0.05, 0.001
LOW = BASE * RATIO
HALF = (BASE - LOW) / 2
#: cos(π·k/6) for k = 0..5, by hand.
COS_SIXTHS = (1.0, math.sqrt(3) / 2, 0.5, 0.0, -0.5, -math.sqrt(3) / 2)
#: The tiny run: 24 training samples in batches of 8 (3 steps per epoch), 2 warm-up epochs of 4.
COSINE_RUN = {"base_lr": BASE, "lr_ratio": RATIO, "lr_scheduler": "cosine", "warm_up_epoch": 2, "num_epoch": 4,
              "batch_size": 8, "eval_interval": 10}
#: The public LR of each of its 12 steps: warm-up constant through each epoch, then T_cur = 0..5 of T_max = 6.
PUBLIC_LRS = [BASE / 2] * 3 + [BASE] * 3 + [LOW + HALF * (1 + c) for c in COS_SIXTHS]


def _run(argv: list) -> int:
    return main_mmcl.main([str(a) for a in argv])


def _record_steps(monkeypatch, stop_at: int | None = None) -> list[float]:
    """Record the learning rate of every SGD step; send this process SIGTERM during step ``stop_at`` (1-based)."""
    original, lrs = torch.optim.SGD.step, []

    def step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        if len(lrs) == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    return lrs


def test_cosine_moves_every_iteration_and_warm_up_every_epoch():
    config = {"base_lr": BASE, "lr_ratio": RATIO, "lr_scheduler": "cosine", "warm_up_epoch": 1, "num_epoch": 3}
    lrs = [learning_rate(epoch, config, batch, 3) for epoch in range(3) for batch in range(3)]
    assert lrs == pytest.approx([BASE] * 3 + [LOW + HALF * (1 + c) for c in COS_SIXTHS], rel=1e-12)
    warm_up = {**config, "warm_up_epoch": 2}
    assert [learning_rate(0, warm_up, batch, 3) for batch in range(3)] == [BASE / 2] * 3


def test_step_decay_stays_per_epoch():
    config = {"base_lr": 0.1, "warm_up_epoch": 5, "step": [35, 55], "lr_decay_rate": 0.1}
    for epoch in (0, 5, 35, 60):
        assert len({learning_rate(epoch, config, batch, 100) for batch in range(100)}) == 1


def test_a_cosine_run_steps_at_the_public_learning_rates(tmp_path, make_config, monkeypatch):
    lrs = _record_steps(monkeypatch)
    assert _run(["--config", make_config(tmp_path, **COSINE_RUN)]) == 0
    assert lrs == pytest.approx(PUBLIC_LRS, rel=1e-12)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [record["lr"] for record in history] == pytest.approx(PUBLIC_LRS[::3], rel=1e-12)  # each first step's


def test_a_cosine_run_stopped_mid_epoch_resumes_to_the_same_weights(tmp_path, make_config, monkeypatch):
    straight = make_config(tmp_path / "a", **COSINE_RUN)
    assert _run(["--config", straight]) == 0
    interrupted = make_config(tmp_path / "b", **COSINE_RUN)
    with monkeypatch.context() as patch:
        before = _record_steps(patch, stop_at=8)  # epoch 3, batch 2: inside the cosine
        assert _run(["--config", interrupted]) == 128 + signal.SIGTERM
    state = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)
    assert (state["epoch"], state["batch"]) == (2, 2)
    after = _record_steps(monkeypatch)
    assert _run(["--config", interrupted, "--resume"]) == 0
    assert before + after == pytest.approx(PUBLIC_LRS, rel=1e-12)
    a = torch.load(tmp_path / "a" / "run" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 12
    for key, value in a["model"].items():
        torch.testing.assert_close(value, b["model"][key], rtol=0, atol=0, msg=key)
