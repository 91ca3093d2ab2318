"""What real mistakes and real clusters do to a training run: failed starts, empty splits, worker counts,
non-finite losses, full disks, pre-emption signals and kills in the middle of a checkpoint write."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import main_mmcl
from engine import checkpoint, data, objective
from engine.checkpoint import load_training_checkpoint
from engine.config import resolve_config
from engine.distributed import Runtime, local_world_size
from engine.errors import InputError
from engine.guards import NonFiniteGuard
from engine.interrupt import StopRequests
from engine.runlog import RunLog
from engine.schedule import build_optimizer, learning_rate, set_learning_rate
from engine.seeding import WorkerSeeder
from engine.trainer import build_model, grad_scaler, train_one_epoch
from engine.workdir import create_train_dir
from feeders.ntu import NTUFeeder
from feeders.prepared import write_prepared_split
from tools import infer

REPO = Path(__file__).resolve().parents[1]


def _run(argv: list) -> int:
    return main_mmcl.main([str(a) for a in argv])


def _one_error_line(capsys, prefix: str = "error: ") -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(prefix), err
    return err[0]


def _same_weights(a: Path, b: Path) -> None:
    first, second = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert first["epoch"] == second["epoch"] and first["step"] == second["step"]
    for key, value in first["model"].items():
        torch.testing.assert_close(value, second["model"][key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("phase", ["train", "test"])
def test_a_failed_start_writes_nothing_and_does_not_block_its_fix(tmp_path, make_config, dataset_dir, capsys, phase):
    config = make_config(tmp_path, num_epoch=1)
    work = tmp_path / "run"
    wrong = ["--test-feeder-args", f"data_path={tmp_path / 'typo'}"]
    extra = ["--phase", "test", "--weights", tmp_path / "missing.pt"] if phase == "test" else []
    assert _run(["--config", config, *wrong, *extra]) == 2
    assert "typo: not found" in _one_error_line(capsys) or "missing.pt" in capsys.readouterr().err
    assert not work.exists() or not any(work.iterdir())
    # A work_dir left by an older failed start (log and config only), or by a test phase, is no earlier run.
    work.mkdir(exist_ok=True)
    (work / "log.txt").write_text("[ 2024 ] command: main_mmcl.py ...\n")
    (work / "config.yaml").write_text("# command line: ...\n")
    assert _run(["--config", config]) == 0
    assert (work / "last.pt").is_file()


def test_an_empty_npz_split_names_the_file(tmp_path):
    npz = tmp_path / "NTU60_CS.npz"
    np.savez(npz, x_train=np.zeros((0, 8, 150), np.float32), y_train=np.zeros((0, 60), np.float32),
             x_test=np.zeros((2, 8, 150), np.float32), y_test=np.eye(60, dtype=np.float32)[:2])
    with pytest.raises(InputError) as caught:
        NTUFeeder(str(npz), "train", window_size=8)
    assert str(caught.value).startswith(f"{npz}: split 'train' holds no sample") and "None" not in str(caught.value)


def test_top_predictions_rank_by_logits_when_probabilities_underflow():
    scores = np.full((1, 10), -1000.0, np.float32)
    scores[0, [7, 4, 9, 2]] = [0.0, -200.0, -400.0, -600.0]  # float32 softmax: all but class 7 are exactly 0
    (top,) = infer.top_predictions(scores, 5)
    assert [p["class"] for p in top] == [7, 4, 9, 2, 0]
    assert top[0]["probability"] == pytest.approx(1.0)


def test_workers_are_capped_at_cores_and_batches(monkeypatch):
    monkeypatch.setattr(data, "available_cpus", lambda: 2)
    assert data.worker_count(8, 100) == 2 and data.worker_count(8, 1) == 1 and data.worker_count(0, 100) == 0
    config = {"num_worker": 8, "batch_size": 4}
    note = data.worker_note(config, 400)
    assert note == "data loading: 2 worker(s) instead of num_worker 8, capped at the 2 CPU cores"
    assert data.worker_note(config, 4) == "data loading: 1 worker(s) instead of num_worker 8, capped at the 1 batches"
    assert data.worker_note({"num_worker": 2, "batch_size": 4}, 400) is None
    monkeypatch.setattr(data, "available_cpus", lambda: 8)  # shared by the processes of a run on one machine
    assert data.worker_count(8, 100, local_processes=4) == 2 and data.worker_count(8, 100, local_processes=16) == 0
    assert data.worker_note(config, 400, local_processes=4) == ("data loading: 2 worker(s) per process instead of "
                                                                "num_worker 8, capped at the 8 CPU cores shared by 4 "
                                                                "processes")


def test_processes_on_this_machine(monkeypatch):
    runtime = Runtime(torch.device("cpu"), rank=5, world_size=8)
    assert local_world_size(runtime) == 8  # spawned by --device: all on this machine
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun, two machines
    assert local_world_size(runtime) == 4


def test_the_training_loader_keeps_its_workers_and_draws_each_epoch_s_samples(tmp_path, make_config):
    config = resolve_config(["--config", str(make_config(tmp_path, num_worker=1))])  # random rotations each epoch
    runtime = Runtime(torch.device("cpu"))
    train_set = data.build_dataset(config, "train")
    kept = data.train_loader(train_set, config, runtime)
    assert kept.num_workers == 1 and kept.persistent_workers
    epochs, generators = [], torch.get_rng_state()
    for epoch, skip in ((0, 0), (1, 0), (1, 1)):
        data.set_loader_epoch(kept, epoch, skip)
        batches = list(kept)
        # a new iterator draws the workers' seed from the loader's generator: the global ones are the training's
        assert torch.equal(torch.get_rng_state(), generators)
        fresh = list(data.train_loader(train_set, {**config, "num_worker": 0}, runtime, epoch, skip))
        assert len(batches) == len(fresh) == 3 - skip
        for batch, expected in zip(batches, fresh, strict=True):
            for got, want in zip(batch, expected, strict=True):
                torch.testing.assert_close(got, want, rtol=0, atol=0)
        epochs.append(torch.cat([batch[0] for batch in batches]))
    assert not torch.equal(epochs[0], epochs[1]) and torch.equal(epochs[1][8:], epochs[2])  # a resumed epoch: its tail


def test_stop_requests_record_the_first_signal_and_a_second_stops_at_once():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequests() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.received == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGTERM)  # the same request passed on by a launcher: not a second one
        with pytest.raises(KeyboardInterrupt, match="second stop signal"):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) == before


def test_loader_workers_ignore_stop_signals():
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        data.WorkerInit(WorkerSeeder(1, 0, 0))(0)
        assert all(signal.getsignal(sig) == signal.SIG_IGN for sig in previous)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _nan_at_call(monkeypatch, bad_calls: set[int]) -> None:
    """Make the cross-entropy objective's loss NaN on the given (1-based) training calls."""
    original = objective.ClassificationObjective.forward
    calls = {"n": 0}

    def forward(self, data, label, *extras):
        logits, losses = original(self, data, label, *extras)
        if self.training:
            calls["n"] += 1
            if calls["n"] in bad_calls:
                losses = {name: value * float("nan") for name, value in losses.items()}
        return logits, losses

    monkeypatch.setattr(objective.ClassificationObjective, "forward", forward)


@pytest.mark.parametrize("phase", ["train", "test"])
def test_too_few_classes_for_the_labels_is_one_line_before_anything_is_written(tmp_path, make_config, capsys, phase):
    config = make_config(tmp_path)  # labels 0..2
    weights = ["--weights", str(tmp_path / "nowhere.pt")] if phase == "test" else []
    assert _run(["--config", config, "--phase", phase, *weights, "--model-args", "num_class=2"]) == 2
    line = _one_error_line(capsys)
    assert "split of" in line and "labels 0..2 (0-based), but the model has 2 classes (model_args.num_class)" in line
    assert not (tmp_path / "run").exists()


def test_a_nonfinite_loss_stops_with_one_line_and_the_run_resumes(tmp_path, make_config, monkeypatch, capsys):
    config = make_config(tmp_path, num_epoch=2)  # 24 samples, batch 8: three steps per epoch
    with monkeypatch.context() as patch:
        _nan_at_call(patch, {5})
        assert _run(["--config", config]) == 1
    line = _one_error_line(capsys, "stopped: ")
    assert "epoch 2, step 5: loss term 'loss_ce' is nan" in line and "last.pt is kept: continue with --resume" in line
    assert load_training_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1
    assert _run(["--config", config, "--resume"]) == 0
    assert load_training_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["evaluations"] == 2  # epoch 1's, before the stop, counts too


def test_skip_nonfinite_skips_batches_with_a_log_line(tmp_path, make_config, monkeypatch):
    config = make_config(tmp_path, num_epoch=1, skip_nonfinite=1)
    _nan_at_call(monkeypatch, {2})
    assert _run(["--config", config]) == 0
    assert "epoch 1, step 2: loss term 'loss_ce' is nan" in (tmp_path / "run" / "log.txt").read_text()


def _reference_epoch(model: torch.nn.Module, loader, optimizer: torch.optim.Optimizer, config: dict) -> None:
    """The training loop as it skipped steps before the device-side guard: the loss read on the host each step,
    a non-finite one skipping the backward pass and the optimizer step and putting the buffers back."""
    buffers = list(model.buffers())
    for batch, (skeletons, label, _) in enumerate(loader):
        set_learning_rate(optimizer, learning_rate(0, config, batch, len(loader)))
        saved = [buffer.clone() for buffer in buffers]
        _, losses = model(skeletons.float(), label.long())
        loss = sum(value.float().mean() for value in losses.values())
        optimizer.zero_grad(set_to_none=True)
        if torch.isfinite(loss):
            loss.backward()
            optimizer.step()
        else:
            with torch.no_grad():
                for buffer, before in zip(buffers, saved, strict=True):
                    buffer.copy_(before)


@pytest.mark.parametrize("optimizer", ["SGD", "AdamW"])
def test_a_step_skipped_on_the_device_leaves_everything_exactly_as_a_step_never_taken(tmp_path, make_config,
                                                                                      monkeypatch, optimizer):
    config = resolve_config(["--config", str(make_config(tmp_path, batch_size=4, skip_nonfinite=2,
                                                         optimizer=optimizer))])  # 6 steps
    runtime, ends = Runtime(torch.device("cpu")), {}
    for loop in ("host", "device"):
        torch.manual_seed(0)
        train_set = data.build_dataset(config, "train")
        model, train_set, _ = objective.build_objective(config, build_model(config, None), train_set)
        step = build_optimizer(list(model.parameters()), config)
        loader = data.train_loader(train_set, config, runtime)
        with monkeypatch.context() as patch:
            _nan_at_call(patch, {1, 4})  # the first step too: the optimizer has no state yet
            if loop == "host":
                _reference_epoch(model, loader, step, config)
            else:
                guard = NonFiniteGuard(2, RunLog(tmp_path, enabled=False), runtime, lambda: "")
                train_one_epoch(model, loader, step, grad_scaler(config, runtime.device), config, runtime, 0, 0,
                                RunLog(tmp_path, enabled=False), guard)
                assert guard.skipped == 2
        ends[loop] = model.state_dict(), step.state_dict()["state"]
    (host_model, host_state), (device_model, device_state) = ends["host"], ends["device"]
    for key, value in host_model.items():  # weights and BatchNorm statistics (counts included)
        torch.testing.assert_close(device_model[key], value, rtol=0, atol=0, msg=key)
    assert device_state.keys() == host_state.keys()
    for index, state in host_state.items():  # momentum, or Adam's moments and step count
        assert device_state[index].keys() == state.keys()
        for name, value in state.items():
            torch.testing.assert_close(device_state[index][name], value, rtol=0, atol=0, msg=f"{index}.{name}")


def test_the_count_of_skipped_steps_survives_resume(tmp_path, make_config, monkeypatch, capsys):
    config = make_config(tmp_path, num_epoch=1, skip_nonfinite=2)  # three steps an epoch
    with monkeypatch.context() as patch:
        _nan_at_call(patch, {2})
        assert _run(["--config", config]) == 0
    assert load_training_checkpoint(tmp_path / "run" / "last.pt")["skipped_nonfinite"] == 1
    with monkeypatch.context() as patch:
        _nan_at_call(patch, {1, 2})
        assert _run(["--config", config, "--resume", "--num-epoch", "2"]) == 1
    assert "epoch 2, step 4: loss term 'loss_ce' is nan (loss_ce=nan): batch skipped (2 of skip_nonfinite 2)" in (
        tmp_path / "run" / "log.txt").read_text()
    assert "epoch 2, step 5: loss term 'loss_ce' is nan" in _one_error_line(capsys, "stopped: ")


def _stopped_mid_epoch(tmp_path: Path, make_config, monkeypatch, **settings) -> Path:
    """A run of two 6-step epochs (batch 4) stopped by SIGTERM during its second step; its config."""
    config = make_config(tmp_path, num_epoch=2, batch_size=4, eval_interval=10, **settings)
    original, steps = torch.optim.SGD.step, []

    def step(self, *args, **kwargs):
        steps.append(1)
        if len(steps) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(torch.optim.SGD, "step", step)
        assert _run(["--config", config]) == 128 + signal.SIGTERM
    state = load_training_checkpoint(tmp_path / "run" / "last.pt")
    assert (state["epoch"], state["batch"], state["loader"]) == (0, 2, {"batch_size": 4, "world_size": 1})
    return config


@pytest.mark.parametrize("change", ["batch_size", "world_size"])
def test_a_mid_epoch_resume_with_other_batches_restarts_the_epoch(tmp_path, make_config, monkeypatch, change):
    config = _stopped_mid_epoch(tmp_path, make_config, monkeypatch)
    last = tmp_path / "run" / "last.pt"
    if change == "world_size":  # as if two processes had saved it
        state = load_training_checkpoint(last)
        checkpoint.save_checkpoint(last, {**state, "loader": {"batch_size": 4, "world_size": 2}})
    assert _run(["--config", config, "--resume", *(["--batch-size", "8"] if change == "batch_size" else [])]) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    saved, now = ("4 on 1", "8 on 1") if change == "batch_size" else ("4 on 2", "4 on 1")
    assert (f"the checkpoint stopped after batch 2 of epoch 1, loading batches of {saved} process(es); this run "
            f"loads batches of {now}: the epoch restarts from its first batch (its first 2 batches trained on "
            "again)") in log
    per_epoch = 3 if change == "batch_size" else 6
    assert load_training_checkpoint(last)["step"] == 2 + 2 * per_epoch  # both epochs whole after the stop


def test_a_mid_epoch_resume_maps_generator_states_of_other_gpus(tmp_path, make_config, monkeypatch):
    config = _stopped_mid_epoch(tmp_path, make_config, monkeypatch)
    last = tmp_path / "run" / "last.pt"
    state = load_training_checkpoint(last)
    cuda = [torch.zeros(16, dtype=torch.uint8)] * 2  # saved where two GPUs were visible
    checkpoint.save_checkpoint(last, {**state, "rng": [{**state["rng"][0], "cuda": cuda}]})
    assert _run(["--config", config, "--resume"]) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "resumed from" in log and ", batch 3 (step 2)" in log
    assert ("random generators: the checkpoint holds the states of 2 CUDA device(s), this process sees 0: 0 "
            "restored, the others as seeded") in log
    assert load_training_checkpoint(last)["step"] == 12


def test_resume_across_a_change_of_precision(tmp_path, make_config):
    config = make_config(tmp_path, num_epoch=1)
    assert _run(["--config", config]) == 0
    last = tmp_path / "run" / "last.pt"
    assert load_training_checkpoint(last)["scaler"] == {}  # float32: no loss scale
    assert _run(["--config", config, "--resume", "--num-epoch", "2", "--amp", "float16"]) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert ("amp: the checkpoint was saved with amp false, this run has float16; a fresh float16 loss scale starts "
            "at 65536") in log
    assert load_training_checkpoint(last)["scaler"]["scale"] > 0
    assert _run(["--config", config, "--resume", "--num-epoch", "3", "--amp", "bfloat16"]) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert ("amp: the checkpoint was saved with amp float16, this run has bfloat16; the checkpoint's float16 loss "
            "scale is not used") in log
    assert load_training_checkpoint(last)["epoch"] == 3


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, make_config, monkeypatch, capsys):
    config = make_config(tmp_path, num_epoch=2)
    original, saves = torch.save, {"n": 0}

    def disk_full_on_second_last(obj, target, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch") == 2:  # epoch 2's best.pt / last.pt
            with open(target, "wb") as handle:
                handle.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        saves["n"] += 1
        return original(obj, target, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", disk_full_on_second_last)
    assert _run(["--config", config]) == 1
    line = _one_error_line(capsys, "stopped: ")
    assert "could not write" in line and "No space left on device" in line and "last.pt is kept" in line
    assert load_training_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1
    assert not list((tmp_path / "run").glob(".*.tmp*"))


def test_a_log_line_that_cannot_be_written_warns_once(tmp_path, capsys):
    log = RunLog(tmp_path / "gone", tensorboard=False)
    log.info("first")
    log.info("second")
    out = capsys.readouterr().out
    assert out.count("warning: cannot append to") == 1 and "second" in out


def test_a_full_or_unwritable_work_dir_is_refused_before_training(tmp_path, make_config, monkeypatch, capsys):
    config = make_config(tmp_path, num_epoch=1)
    monkeypatch.setattr("engine.workdir.shutil.disk_usage", lambda path: os.statvfs_result((0,) * 10) and
                        type("Usage", (), {"free": 1000})())
    assert _run(["--config", config]) == 2
    assert "MiB free, the checkpoints need about" in _one_error_line(capsys)
    assert not (tmp_path / "run" / "log.txt").exists()
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(InputError, match="not writable"):
        create_train_dir({"work_dir": str(blocked / "run")}, None, 0)


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_a_checkpoint_that_resumes_to_the_same_weights(tmp_path, make_config, capsys):
    model_args = {"num_class": 3, "num_point": 25, "num_person": 2, "graph": "graph.ntu_rgb_d.Graph", "base_channel": 8,
                  "drop_out": 0.5}  # dropout draws from the global generators, which are restored mid-epoch
    settings = {"num_epoch": 3, "batch_size": 2, "eval_interval": 10, "test_batch_size": 12, "model_args": model_args}
    straight = make_config(tmp_path / "a", **settings)
    assert _run(["--config", straight]) == 0
    interrupted = make_config(tmp_path / "b", **settings, num_worker=1)  # the order does not depend on workers
    log = tmp_path / "b" / "run" / "log.txt"
    process = subprocess.Popen([sys.executable, "main_mmcl.py", "--config", str(interrupted)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (log.is_file() and "epoch 1/3" in log.read_text()) and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)  # as a scheduler does: the whole job, DataLoader worker included
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1].startswith("stopped: SIGTERM received: stopped at ")
    state = load_training_checkpoint(tmp_path / "b" / "run" / "last.pt")
    assert state["epoch"] in (1, 2) and (state["epoch"], state["batch"]) != (1, 0)
    assert _run(["--config", interrupted, "--resume"]) == 0
    _same_weights(tmp_path / "a" / "run" / "last.pt", tmp_path / "b" / "run" / "last.pt")


_WRITER = """
import sys, torch
from engine.checkpoint import save_checkpoint
epoch = 0
while True:
    epoch += 1
    save_checkpoint(sys.argv[1], {"epoch": epoch, "model": {"w": torch.full((1 << 20,), float(epoch))}})
    print(epoch, flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_checkpoint_writes_never_leaves_a_corrupt_last_pt(tmp_path):
    rng = np.random.default_rng(0)
    target = tmp_path / "last.pt"
    for _ in range(6):
        process = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], cwd=REPO, stdout=subprocess.PIPE,
                                   text=True)
        process.stdout.readline()  # one checkpoint is complete
        time.sleep(rng.uniform(0, 0.15))
        process.kill()
        process.wait()
        state = load_training_checkpoint(target)
        assert torch.all(state["model"]["w"] == state["epoch"])
    create_train_dir({"work_dir": str(tmp_path)}, target, 0)  # a resumed run clears the killed writes' leftovers
    assert not list(tmp_path.glob(".*.tmp*"))


def test_an_nw_ucla_folder_off_the_standard_counts_is_logged_with_the_difference(tmp_path, make_config):
    from tests.test_feeders import write_ucla

    write_ucla(tmp_path / "ucla")  # 6 training samples (views 1, 2) and 3 test samples (view 3)
    feeder = {"data_path": str(tmp_path / "ucla"), "window_size": 8}
    config = make_config(tmp_path, feeder="ucla", num_epoch=1, batch_size=2,
                         train_feeder_args={**feeder, "split": "train"}, test_feeder_args={**feeder, "split": "test"},
                         model_args={"num_class": 10, "num_point": 20, "num_person": 1, "graph": "graph.ucla.Graph",
                                     "base_channel": 8})
    assert _run(["--config", config]) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "6 samples, the standard release has 1020 (1014 fewer): check the folder" in log
    assert "3 samples, the standard release has 464 (461 fewer)" in log


def _nan_dataset(root: Path) -> list[str]:
    """The tiny dataset with one joint NaN in every frame of the first training and the first test sample;
    returns those samples' names."""
    from tests.conftest import _tiny_split

    rng, bad = np.random.default_rng(0), []
    for split, n in (("train", 24), ("test", 12)):
        data, labels, names = _tiny_split(rng, n)
        data[0, :, :, 3, 0] = np.nan
        write_prepared_split(root, split, data, labels, names)
        bad.append(names[0])
    return bad


def test_non_finite_input_is_named_in_training_and_evaluation(tmp_path, make_config, capsys):
    bad_train, bad_test = _nan_dataset(tmp_path / "data")
    feeder = {"data_path": str(tmp_path / "data"), "window_size": 16}
    config = make_config(tmp_path, num_epoch=1, train_feeder_args={**feeder, "split": "train"},
                         test_feeder_args={**feeder, "split": "test"})
    assert _run(["--config", config]) == 1
    line = _one_error_line(capsys, "stopped: ")
    assert f"the input of 1 sample(s) is not finite, e.g. {bad_train}" in line and "base_lr" not in line
    assert _run(["--config", config, "--overwrite", "--skip-nonfinite", "1"]) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert f"e.g. {bad_train} (a data problem" in log and "batch skipped (1 of skip_nonfinite 1)" in log
    assert f"warning: epoch1_test: 1 sample(s) have non-finite scores, e.g. {bad_test}" in log
