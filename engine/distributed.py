"""Device choice and process groups: one CPU or GPU, DataParallel for ``--device 0 1``, DDP under torchrun."""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass
class Runtime:
    """Where this process runs: its device, its rank among ``world_size`` processes, extra DataParallel GPUs."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    data_parallel_ids: list[int] = field(default_factory=list)
    note: str = ""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the environment of torchrun (or any launcher setting RANK / WORLD_SIZE) is present."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup_runtime(device_ids: list[int]) -> Runtime:
    """Pick the device(s) and join the process group if launched by torchrun.

    CUDA is used when available: under torchrun each process takes GPU ``LOCAL_RANK`` and NCCL; otherwise
    the first listed id, and several ids mean DataParallel over them (the public ``--device 0 1``). Without
    CUDA everything runs on the CPU (gloo under torchrun) and the note says so.
    """
    cuda = torch.cuda.is_available()
    if launched_by_torchrun():
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if cuda:
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        else:
            device = torch.device("cpu")
            torch.set_flush_denormal(True)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=30))
        note = f"distributed: rank {rank} of {world} on {device} ({dist.get_backend()})"
        return Runtime(device, rank, world, local_rank, note=note)
    if not cuda:
        torch.set_flush_denormal(True)  # denormal activations slow CPU kernels by an order of magnitude
        return Runtime(torch.device("cpu"), note="CUDA is not available: running on the CPU")
    ids = [int(i) for i in device_ids] or [0]
    missing = [i for i in ids if i >= torch.cuda.device_count()]
    if missing:
        raise ValueError(f"--device {missing[0]}: only {torch.cuda.device_count()} CUDA device(s) visible")
    torch.cuda.set_device(ids[0])
    parallel = ids if len(ids) > 1 else []
    note = f"running on cuda:{ids[0]}" + (f" with DataParallel over GPUs {ids}" if parallel else "")
    return Runtime(torch.device("cuda", ids[0]), data_parallel_ids=parallel, note=note)


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
