"""No training step waits for the device between two logging steps.

Every way Python code reads a tensor's value on the host (``item``, ``tolist``, ``cpu``, ``numpy``, ``bool``,
``int``, ``float``, ``index``) and every ``torch.distributed.all_reduce`` is counted while the training loop runs,
per step: the steps between two logging steps (every ``log_interval``) must have none, the logging steps and the
epoch's end some (the losses, the non-finite guard and, under DDP, the stop requests are read there). On the CPU
these reads cost little, but on a GPU each one waits for all the work queued before it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from engine.config import resolve_config
from engine.data import build_dataset, train_loader
from engine.distributed import Runtime
from engine.guards import NonFiniteGuard
from engine.objective import build_objective
from engine.runlog import RunLog
from engine.schedule import build_optimizer
from engine.trainer import build_model, grad_scaler, train_one_epoch
from tests.test_run_faults import _nan_at_call

#: The tensor methods that read a value on the host.
READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")
#: 24 training samples in batches of 2: 12 steps, logging steps 4, 8 and 12 (the epoch's last).
STEPS, LOG_INTERVAL = 12, 4


class StepSyncs:
    """Counts host reads per training step while installed: window ``k`` holds those after the loader gave
    batch ``k`` (1-based) and before it is asked for the next (the loader's own work is not counted)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.windows: list[list[str]] = [[]]  # window 0: before the first batch
        self.counting = True
        for name in READS:
            self._wrap(monkeypatch, torch.Tensor, name)
        self._wrap(monkeypatch, dist, "all_reduce")

    def _wrap(self, monkeypatch: pytest.MonkeyPatch, owner, name: str) -> None:
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            if self.counting:
                self.windows[-1].append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    def loader(self, loader):
        """``loader`` with each batch opening a new window."""
        counter = self

        class Windowed:
            batch_size = loader.batch_size

            def __len__(self) -> int:
                return len(loader)

            def __iter__(self):
                iterator = iter(loader)
                while True:
                    counter.counting = False
                    try:
                        batch = next(iterator)
                    except StopIteration:
                        return
                    finally:
                        counter.counting = True
                    counter.windows.append([])
                    yield batch

        return Windowed()


def train_counting(config: dict, runtime: Runtime, log: RunLog, wrap=lambda objective: objective
                   ) -> tuple[StepSyncs, dict, NonFiniteGuard]:
    """One epoch of ``config`` on ``runtime`` (``wrap``: e.g. DDP) with host reads counted per step."""
    torch.manual_seed(0)
    train_set = build_dataset(config, "train")
    objective, train_set, _ = build_objective(config, build_model(config, None), train_set)
    objective = wrap(objective)
    optimizer = build_optimizer([p for p in objective.parameters() if p.requires_grad], config)
    guard = NonFiniteGuard(config["skip_nonfinite"], log, runtime, lambda: "nothing kept")
    loader = train_loader(train_set, config, runtime)
    with pytest.MonkeyPatch.context() as monkeypatch:
        syncs = StepSyncs(monkeypatch)
        _, stats = train_one_epoch(objective, syncs.loader(loader), optimizer, grad_scaler(config, runtime.device),
                                   config, runtime, 0, 0, log, guard)
    return syncs, stats, guard


def assert_reads_only_at_logging_steps(windows: list[list[str]]) -> None:
    """``windows`` (:class:`StepSyncs`'s) hold reads at the logging steps only, and some there."""
    steps = windows[1:]
    assert len(steps) == STEPS
    between = {step: reads for step, reads in enumerate(steps, 1) if step % LOG_INTERVAL and reads}
    assert between == {}  # e.g. {2: ['item', ...]}: step 2 waited for the device
    assert all(steps[step - 1] for step in range(LOG_INTERVAL, STEPS + 1, LOG_INTERVAL))  # the counter counts


@pytest.mark.parametrize("amp", [False, "float16", "bfloat16"])
def test_training_steps_read_nothing_on_the_host_between_logging_steps(tmp_path, make_config, monkeypatch, amp):
    config = resolve_config(["--config", str(make_config(tmp_path, batch_size=2, log_interval=LOG_INTERVAL,
                                                         skip_nonfinite=1, amp=amp))])
    with monkeypatch.context() as patch:
        _nan_at_call(patch, {2})  # a skipped step (loss, undo, guard record) inside the first interval
        syncs, stats, guard = train_counting(config, Runtime(torch.device("cpu")), RunLog(tmp_path, tensorboard=False))
    assert_reads_only_at_logging_steps(syncs.windows)
    assert guard.skipped == 1 and math.isfinite(stats["loss"])
    assert "epoch 1, step 2: loss term 'loss_ce' is nan" in (tmp_path / "log.txt").read_text()


def _ddp_rank(rank: int, config: dict, folder: str) -> None:
    """Rank ``rank`` of two gloo processes: an epoch under DDP, rank 1's loss NaN at its second step, with host
    reads counted; the counts and the skipped steps saved."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=2)
    try:
        with pytest.MonkeyPatch.context() as patch:
            _nan_at_call(patch, {2} if rank == 1 else set())
            syncs, stats, guard = train_counting(config, Runtime(torch.device("cpu"), rank, 2, rank),
                                                 RunLog(Path(folder), enabled=False),
                                                 wrap=torch.nn.parallel.DistributedDataParallel)
        counted = {"windows": syncs.windows, "loss": stats["loss"], "skipped": guard.skipped}
        Path(folder, f"rank{rank}.json").write_text(json.dumps(counted))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_training_steps_neither_read_nor_all_reduce_between_logging_steps(tmp_path, make_config):
    config = resolve_config(["--config", str(make_config(tmp_path, batch_size=1, log_interval=LOG_INTERVAL,
                                                         skip_nonfinite=1))])  # 12 steps a rank
    mp.start_processes(_ddp_rank, args=(config, str(tmp_path)), nprocs=2, start_method="spawn")
    for rank in range(2):
        counted = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert_reads_only_at_logging_steps(counted["windows"])
        assert "all_reduce" in counted["windows"][LOG_INTERVAL]  # the ranks agree on stop requests at logging steps
        # rank 1's NaN made both skip that step: its backward left NaN gradients, which DDP averaged
        assert counted["skipped"] == 1 and math.isfinite(counted["loss"])
