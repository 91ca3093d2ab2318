"""Device choice and process groups: one CPU or GPU, DDP under torchrun or in processes spawned for
``--device 0 1`` (``engine.launch``), DataParallel for ``--device 0 1`` with ``parallel: dp``."""
from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.distributed as dist

from engine.errors import InputError

#: /proc/cpuinfo flags of native bfloat16 arithmetic: x86 AVX512-BF16 and AMX-BF16, Arm BF16.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
#: How long a collective may wait for the other ranks before the run fails.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)


@dataclass
class Runtime:
    """Where this process runs: its device, its rank among ``world_size`` processes, extra DataParallel GPUs,
    and whether the processes split the configured batches (spawned for ``--device 0 1``) or each loads whole
    ones (torchrun)."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    data_parallel_ids: list[int] = field(default_factory=list)
    note: str = ""
    split_batches: bool = False

    def share(self, batch_size: int) -> int:
        """This process's batch for a configured ``batch_size``: all of it, or an equal share (rounded up)
        when the processes split the batches, as DataParallel splits them over its GPUs."""
        return -(-batch_size // self.world_size) if self.split_batches else batch_size

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the environment of torchrun (or any launcher setting RANK / WORLD_SIZE) is present."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def cpu_requested(device_ids: Sequence[int | str]) -> bool:
    """True for ``--device cpu`` (one CPU process) or ``--device cpu cpu ...`` (one gloo process per entry)."""
    return bool(device_ids) and all(d == "cpu" for d in device_ids)


def cuda_ids(device_ids: Sequence[int | str]) -> list[int]:
    """The listed CUDA ids (``[0]`` if none), each visible and listed once; else an ``InputError``."""
    ids = [int(i) for i in device_ids] or [0]
    missing = [i for i in ids if i >= torch.cuda.device_count()]
    if missing:
        raise InputError(f"--device {' '.join(map(str, ids))}: GPU {missing[0]} is not visible "
                         f"(this machine shows {torch.cuda.device_count()} CUDA device(s))")
    if len(set(ids)) < len(ids):
        raise InputError(f"--device {' '.join(map(str, ids))}: a device is listed twice")
    return ids


def visible_devices(device_ids: Sequence[int | str], explicit: bool) -> tuple[list[int | str], str]:
    """The device list to run on, and a log note when it differs from ``device_ids`` (else ``""``).

    A list from a config file or the defaults (``explicit`` False) that names GPUs this machine does not show
    keeps the listed GPUs that exist (GPU 0 if none does): the public configs' ``device: [0, 1]`` starts on one
    GPU. A list given as ``--device`` on the command line (``explicit``) is kept as asked, so that
    :func:`cuda_ids` names a missing GPU. Without CUDA, for ``cpu`` and under torchrun nothing changes
    (:func:`setup_runtime` then runs on the CPU or on GPU ``LOCAL_RANK``). See docs/gpu.md, "Devices".
    """
    ids = list(device_ids)
    if explicit or cpu_requested(ids) or launched_by_torchrun() or not torch.cuda.is_available():
        return ids, ""
    count = torch.cuda.device_count()
    kept = [i for i in ids if int(i) < count] or ([0] if ids else [])
    if kept == ids:
        return ids, ""
    return kept, (f"device {ids} of the config: this machine shows {count} CUDA device(s), "
                  f"so the run uses {' '.join(map(str, kept))} (--device on the command line insists)")


def spawn_devices(device_ids: Sequence[int | str], parallel: str) -> list[torch.device]:
    """The devices to start one DDP process each on (``engine.launch``), or ``[]`` to run in this process.

    Spawning needs several listed devices, ``parallel: ddp`` and no torchrun: ``--device 0 1`` on CUDA (without
    CUDA the run stays one CPU process, as before), ``--device cpu cpu`` on the CPU.
    """
    if launched_by_torchrun() or parallel != "ddp" or len(device_ids) < 2:
        return []
    if cpu_requested(device_ids):
        return [torch.device("cpu")] * len(device_ids)
    if not torch.cuda.is_available():
        return []
    return [torch.device("cuda", i) for i in cuda_ids(device_ids)]


def setup_runtime(device_ids: Sequence[int | str], note: str = "") -> Runtime:
    """Pick the device(s) and join the process group if launched by torchrun; ``note`` (how the device list
    was chosen, :func:`visible_devices`) leads the runtime's log note.

    CUDA is used when available and ``--device`` does not say ``cpu``: under torchrun each process takes GPU
    ``LOCAL_RANK`` and NCCL; otherwise the first listed id, and several ids mean DataParallel over them (the
    public ``--device 0 1`` with ``parallel: dp``). Without CUDA everything runs on the CPU (gloo under
    torchrun) and the note says so.
    """
    return with_note(_setup_runtime(device_ids), note)


def with_note(runtime: Runtime, note: str) -> Runtime:
    """``runtime`` with ``note`` (if any) put before its own note, on the same log line."""
    return replace(runtime, note="; ".join(part for part in (note, runtime.note) if part))


def _setup_runtime(device_ids: Sequence[int | str]) -> Runtime:
    on_cpu = cpu_requested(device_ids)
    cuda = torch.cuda.is_available() and not on_cpu
    if launched_by_torchrun():
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
        return _join_group(device, rank, world, local_rank)
    if not cuda:
        torch.set_flush_denormal(True)  # denormal activations slow CPU kernels by an order of magnitude
        why = "--device cpu" if on_cpu else "CUDA is not available"
        return Runtime(torch.device("cpu"), note=f"{why}: running on the CPU")
    ids = cuda_ids(device_ids)
    torch.cuda.set_device(ids[0])
    parallel = ids if len(ids) > 1 else []
    note = f"running on cuda:{ids[0]}" + (f" with DataParallel over GPUs {ids}" if parallel else "")
    return Runtime(torch.device("cuda", ids[0]), data_parallel_ids=parallel, note=note)


def join_spawned_group(rank: int, devices: Sequence[torch.device], port: int) -> Runtime:
    """Join the process group of ``len(devices)`` processes spawned on this machine as rank ``rank`` on
    ``devices[rank]``, through the rendezvous store on ``port`` of 127.0.0.1 (held by the parent); the
    processes split the configured batches."""
    store = dist.TCPStore("127.0.0.1", port, len(devices), is_master=False, timeout=COLLECTIVE_TIMEOUT)
    runtime = _join_group(devices[rank], rank, len(devices), rank, store,
                          f"spawned; each batch split over the {len(devices)} processes")
    return replace(runtime, split_batches=True)


def _join_group(device: torch.device, rank: int, world: int, local_rank: int, store: dist.Store | None = None,
                how: str = "") -> Runtime:
    """Set the device up and join the process group (NCCL on CUDA, gloo on the CPU); env rendezvous without
    ``store``."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    else:
        torch.set_flush_denormal(True)
    if not dist.is_initialized():
        joined_by_store = store is not None
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=store,
                                rank=rank if joined_by_store else -1, world_size=world if joined_by_store else -1,
                                timeout=COLLECTIVE_TIMEOUT)
    note = f"distributed: rank {rank} of {world} on {device} ({dist.get_backend()})" + (f", {how}" if how else "")
    return Runtime(device, rank, world, local_rank, note=note)


def native_bf16_flags(cpuinfo: str | None = None) -> list[str] | None:
    """The native-bfloat16 flags of this CPU's ``/proc/cpuinfo`` (or of the text ``cpuinfo``); None if unreadable."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    listed = {flag for line in cpuinfo.splitlines() if line.split(":")[0].strip() in ("flags", "Features")
              for flag in line.partition(":")[2].split()}
    return [flag for flag in NATIVE_BF16_FLAGS if flag in listed]


def teardown_runtime() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_objects(obj: object, runtime: Runtime) -> list[object]:
    """Every rank's ``obj``, in rank order (just ``[obj]`` in a single process)."""
    if not runtime.distributed:
        return [obj]
    gathered: list[object] = [None] * runtime.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def reduce_mean(value: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """The mean of a scalar tensor over all ranks."""
    if not runtime.distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / runtime.world_size


def local_world_size(runtime: Runtime) -> int:
    """The run's processes on this machine: torchrun's ``LOCAL_WORLD_SIZE``, else all of them (the processes
    that ``--device 0 1`` spawns share one machine)."""
    if launched_by_torchrun() and "LOCAL_WORLD_SIZE" in os.environ:
        return int(os.environ["LOCAL_WORLD_SIZE"])
    return runtime.world_size


def broadcast_buffers(module: torch.nn.Module, runtime: Runtime) -> None:
    """Give every rank rank 0's buffers of ``module``: under DDP each rank's last training steps updated its own
    BatchNorm statistics from its own samples, while the parameters are the same everywhere."""
    if not runtime.distributed:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)
