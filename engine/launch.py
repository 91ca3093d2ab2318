"""Run a phase on the configured devices: in this process, or one spawned DDP process per listed device.

``--device 0 1`` without torchrun (``parallel: ddp``, the default) starts one process per listed device on this
machine: NCCL on CUDA, gloo for ``--device cpu cpu``, a rendezvous store on a free local port that this
process holds. The processes split each configured batch as DataParallel does (the public configs' batch
sizes keep their meaning), so a run equals ``torchrun --nproc_per_node 2`` with half the batch sizes. Only
rank 0 writes files. The first failing process's ``InputError`` / ``RunStopped`` (or crash) is raised here
again as one line, after the others have stopped; SIGTERM and SIGINT sent to this process are passed on.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from engine.distributed import (
    COLLECTIVE_TIMEOUT,
    Runtime,
    join_spawned_group,
    setup_runtime,
    spawn_devices,
    teardown_runtime,
    visible_devices,
    with_note,
)
from engine.errors import InputError, RunStopped
from engine.interrupt import STOP_SIGNALS
from model.kernels import tf32

T = TypeVar("T")
#: A phase of a run (training, testing) given the config and where this process runs.
Phase = Callable[[dict[str, Any], Runtime], T]
#: Seconds the other processes get to end by themselves after one has failed, before they are terminated.
GRACE_SECONDS = 10.0


def run_on_devices(phase: Phase[T], config: dict[str, Any]) -> T:
    """Run ``phase`` here (one device, DataParallel, or a rank of torchrun) or in one spawned process per
    listed device; returns rank 0's result. A config's device list shrinks to the GPUs this machine shows
    (``engine.distributed.visible_devices``); the log says so."""
    device_ids, note = visible_devices(config["device"], config["device_on_command_line"])
    devices = spawn_devices(device_ids, config["parallel"])
    if devices:
        return spawn(phase, config, devices, note)
    runtime = setup_runtime(device_ids, note)
    try:
        with tf32(config["tf32"], runtime.device):
            return phase(config, runtime)
    finally:
        teardown_runtime()


def spawn(phase: Phase[T], config: dict[str, Any], devices: list[torch.device], note: str = "") -> T:
    """Run ``phase`` as rank i on ``devices[i]`` in ``len(devices)`` new processes; rank 0's result (``note``
    leads each rank's runtime note).

    The processes split each configured batch (``batch_size`` must be a multiple of their number), as
    DataParallel does. Results travel through a pipe: they must be small (metrics, not tensors).
    """
    if config["batch_size"] % len(devices):
        listed = " ".join(device.type if device.index is None else str(device.index) for device in devices)
        raise InputError(f"batch_size {config['batch_size']}: --device {listed} "
                         f"splits each batch over {len(devices)} processes: use a multiple of {len(devices)}")
    store = dist.TCPStore("127.0.0.1", 0, len(devices), is_master=True, wait_for_workers=False,
                          timeout=COLLECTIVE_TIMEOUT)
    reports = mp.get_context("spawn").SimpleQueue()
    context = mp.start_processes(_rank_main, args=(phase, config, devices, store.port, reports, note),
                                 nprocs=len(devices), join=False, start_method="spawn")
    try:
        with forwarded_stop_signals(context.pids()):
            while not context.join(grace_period=GRACE_SECONDS):
                pass
    except mp.ProcessExitedException as exited:
        raise _failure(_drain(reports), exited, devices) from None
    results = [value for kind, _, value, _ in _drain(reports) if kind == "result"]
    return results[0]


def _rank_main(rank: int, phase: Phase[T], config: dict[str, Any], devices: list[torch.device], port: int,
               reports, note: str) -> None:
    """One spawned process: join the group, run ``phase``, report rank 0's result or this rank's failure as
    (kind, rank, value or message, exit status), and exit with that status."""
    try:
        runtime = with_note(join_spawned_group(rank, devices, port), note)
        try:
            with tf32(config["tf32"], runtime.device):
                result = phase(config, runtime)
        finally:
            teardown_runtime()
    except InputError as error:
        _exit(reports, ("input", rank, str(error), 2))
    except RunStopped as error:
        _exit(reports, ("stopped", rank, str(error), error.exit_status))
    except KeyboardInterrupt:
        message = f"rank {rank} was interrupted (a second stop signal, or one before the run began)"
        _exit(reports, ("stopped", rank, message, 130))
    except Exception as error:  # noqa: BLE001 (a crash: traceback to this process's stderr, one line to the parent)
        traceback.print_exc()
        reason = " ".join(str(error).split())
        _exit(reports, ("crash", rank, f"rank {rank} on {devices[rank]} failed: {type(error).__name__}: {reason}", 1))
    if rank == 0:
        reports.put(("result", rank, result, 0))


def _exit(reports, report: tuple[str, int, str, int]) -> None:
    """Send ``report`` to the parent and exit with its status."""
    reports.put(report)
    sys.exit(report[3])


def _drain(reports) -> list[tuple[str, int, Any, int]]:
    """Everything the processes reported, in the order it arrived."""
    received = []
    while not reports.empty():
        received.append(reports.get())
    return received


def _failure(reports: list[tuple[str, int, Any, int]], exited: mp.ProcessExitedException,
             devices: list[torch.device]) -> Exception:
    """The one-line exception for the first failure reported (or, with no report, the way the first failing
    process ended)."""
    for kind, _, message, status in reports:
        if kind == "input":
            return InputError(message)
        if kind in ("stopped", "crash"):
            return RunStopped(message, exit_status=status)
    rank = exited.error_index
    how = f"signal {exited.signal_name}" if exited.signal_name else f"exit status {exited.exit_code}"
    return RunStopped(f"rank {rank} on {devices[rank]} ended with {how}; the other ranks were stopped")


@contextlib.contextmanager
def forwarded_stop_signals(pids: list[int]) -> Iterator[None]:
    """Pass SIGTERM and SIGINT received by this process on to ``pids`` (each stops as its own signal asks)."""

    def forward(signum: int, frame) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
