"""Datasets and DataLoaders of a run: seeded shuffling per epoch, sharding across ranks."""
from __future__ import annotations

import itertools
import math
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler

from engine.distributed import Runtime
from engine.errors import InputError
from engine.interrupt import ignore_stop_signals
from engine.seeding import WorkerSeeder, derive_seed
from feeders.registry import build_feeder


def build_dataset(config: dict[str, Any], split: str) -> Dataset:
    """The dataset of ``split`` ('train' or 'test') built from the config's feeder and its arguments."""
    return build_feeder(config["feeder"], dict(config[f"{split}_feeder_args"]), seed=config["seed"])


def check_labels(dataset: Dataset, backbone: torch.nn.Module, split: str, config: dict[str, Any]) -> None:
    """Refuse a split whose labels do not fit the backbone's class scores (its ``fc``; a backbone without one is
    not checked), with one line naming both."""
    num_class = getattr(getattr(backbone, "fc", None), "out_features", None)
    labels = np.asarray(getattr(dataset, "label", []))
    if num_class is not None and labels.size and (labels.min() < 0 or labels.max() >= num_class):
        where = config[f"{split}_feeder_args"].get("data_path", config["feeder"])
        raise InputError(f"{split} split of {where}: labels {int(labels.min())}..{int(labels.max())} (0-based), but "
                         f"the model has {num_class} classes (model_args.num_class): set num_class to at least "
                         f"{int(labels.max()) + 1}")


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` of a dataset, in order: each rank evaluates its own share."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = range(rank, length, world_size)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class SkipSampler(Sampler[int]):
    """The indices of ``sampler`` after its first ``skip`` ones: an epoch resumed where it was stopped."""

    def __init__(self, sampler: Sampler[int], skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


def train_loader(dataset: Dataset, config: dict[str, Any], runtime: Runtime, epoch: int, skip_batches: int = 0
                 ) -> DataLoader:
    """The shuffled training loader of ``epoch`` without its first ``skip_batches`` batches; its order depends
    only on (seed, epoch, rank)."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    if runtime.distributed:
        sampler: Sampler[int] = DistributedSampler(dataset, runtime.world_size, runtime.rank, shuffle=True,
                                                   seed=config["seed"], drop_last=True)
        sampler.set_epoch(epoch)
    else:
        generator = torch.Generator().manual_seed(derive_seed(config["seed"], epoch, 17))
        sampler = RandomSampler(dataset, generator=generator)
    batch_size = runtime.share(config["batch_size"])
    drop_last = len(sampler) >= batch_size
    if skip_batches:
        sampler = SkipSampler(sampler, skip_batches * batch_size)
    return _loader(dataset, sampler, batch_size, config, runtime, epoch, drop_last=drop_last)


def test_loader(dataset: Dataset, config: dict[str, Any], runtime: Runtime) -> DataLoader:
    """The evaluation loader: this rank's share of the dataset, in dataset order."""
    sampler = ShardSampler(len(dataset), runtime.rank, runtime.world_size)
    return _loader(dataset, sampler, runtime.share(config["test_batch_size"]), config, runtime, epoch=0,
                   drop_last=False)


class WorkerInit:
    """DataLoader ``worker_init_fn``: ignore stop signals (engine/interrupt.py), then seed the worker."""

    def __init__(self, seeder: WorkerSeeder) -> None:
        self.seeder = seeder

    def __call__(self, worker_id: int) -> None:
        ignore_stop_signals()
        self.seeder(worker_id)


def available_cpus() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_count(requested: int, batches: int) -> int:
    """DataLoader workers: ``num_worker`` capped at the CPU cores and at the ``batches`` to load."""
    return max(0, min(requested, available_cpus(), batches))


def worker_note(config: dict[str, Any], train_samples: int) -> str | None:
    """A log line when the training loader uses fewer workers than ``num_worker`` asks for, else None."""
    requested = config["num_worker"]
    batches = math.ceil(train_samples / config["batch_size"])
    used = worker_count(requested, batches)
    if used == requested:
        return None
    limit = f"the {available_cpus()} CPU cores" if used == available_cpus() else f"the {batches} batches"
    return f"data loading: {used} worker(s) instead of num_worker {requested}, capped at {limit}"


def _loader(dataset: Dataset, sampler: Sampler[int], batch_size: int, config: dict[str, Any], runtime: Runtime,
            epoch: int, drop_last: bool) -> DataLoader:
    workers = worker_count(config["num_worker"], math.ceil(len(sampler) / batch_size))
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=drop_last,
        pin_memory=runtime.device.type == "cuda",
        worker_init_fn=WorkerInit(WorkerSeeder(config["seed"], runtime.rank, epoch)) if workers else None,
    )
