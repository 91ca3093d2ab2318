"""Datasets and DataLoaders of a run: seeded shuffling per epoch, sharding across ranks, workers kept for the run.

The training loader is built once per run and moved from epoch to epoch (:func:`set_loader_epoch`): its
sampler yields ``(epoch, index)`` pairs and its dataset selects each epoch's random draws from them in the
worker that loads the sample, so ``persistent_workers`` keep running across epochs and a resumed epoch (its
first batches skipped) still draws exactly what an uninterrupted one does.
"""
from __future__ import annotations

import itertools
import math
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler, get_worker_info

from engine.distributed import Runtime, local_world_size
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


class EpochSampler(Sampler[tuple[int, int]]):
    """The shuffled training order of the epoch set by :meth:`set_epoch`, after its first ``skip`` indices, as
    ``(epoch, index)`` pairs; the order depends only on (seed, epoch, rank, world size)."""

    def __init__(self, dataset: Dataset, seed: int, runtime: Runtime) -> None:
        self.dataset, self.seed = dataset, seed
        self.distributed = (DistributedSampler(dataset, runtime.world_size, runtime.rank, shuffle=True, seed=seed,
                                               drop_last=True) if runtime.distributed else None)
        self.set_epoch(0)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Make the order that of ``epoch``, without its first ``skip`` indices."""
        self.epoch, self.skip = epoch, skip
        if self.distributed is not None:
            self.distributed.set_epoch(epoch)
            self.order: Sampler[int] = self.distributed
        else:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch, 17))
            self.order = RandomSampler(self.dataset, generator=generator)

    def epoch_length(self) -> int:
        """The indices of a whole epoch."""
        return len(self.order)

    def __iter__(self):
        return ((self.epoch, index) for index in itertools.islice(iter(self.order), self.skip, None))

    def __len__(self) -> int:
        return max(0, len(self.order) - self.skip)


class EpochDataset(Dataset):
    """``dataset`` read by ``(epoch, index)`` pairs: on the first sample of each epoch it selects that epoch's
    random draws (``set_epoch``) and, in a DataLoader worker, reseeds the worker's global generators from
    (seed, rank, epoch, worker id); then it returns ``dataset[index]``."""

    def __init__(self, dataset: Dataset, seed: int, rank: int) -> None:
        self.dataset, self.seed, self.rank = dataset, seed, rank
        self.epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        if epoch != self.epoch:
            self.epoch = epoch
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            worker = get_worker_info()
            if worker is not None:
                WorkerSeeder(self.seed, self.rank, epoch)(worker.id)
        return self.dataset[index]


def train_loader(dataset: Dataset, config: dict[str, Any], runtime: Runtime, epoch: int = 0, skip_batches: int = 0
                 ) -> DataLoader:
    """The shuffled training loader, at ``epoch`` without its first ``skip_batches`` batches (move it to later
    epochs with :func:`set_loader_epoch`); its order depends only on (seed, epoch, rank)."""
    sampler = EpochSampler(dataset, config["seed"], runtime)
    batch_size = runtime.share(config["batch_size"])
    loader = _loader(EpochDataset(dataset, config["seed"], runtime.rank), sampler, batch_size, config, runtime,
                     drop_last=sampler.epoch_length() >= batch_size, init=WorkerInit())
    set_loader_epoch(loader, epoch, skip_batches)
    return loader


def set_loader_epoch(loader: DataLoader, epoch: int, skip_batches: int = 0) -> None:
    """Make a :func:`train_loader` deliver the batches of ``epoch`` after its first ``skip_batches``."""
    loader.sampler.set_epoch(epoch, skip_batches * loader.batch_size)


def test_loader(dataset: Dataset, config: dict[str, Any], runtime: Runtime) -> DataLoader:
    """The evaluation loader: this rank's share of the dataset, in dataset order."""
    sampler = ShardSampler(len(dataset), runtime.rank, runtime.world_size)
    return _loader(dataset, sampler, runtime.share(config["test_batch_size"]), config, runtime, drop_last=False,
                   init=WorkerInit(WorkerSeeder(config["seed"], runtime.rank, 0)))


class WorkerInit:
    """DataLoader ``worker_init_fn``: ignore stop signals (engine/interrupt.py), then seed the worker (with a
    ``seeder``; the training loader's workers are seeded per epoch by :class:`EpochDataset`)."""

    def __init__(self, seeder: WorkerSeeder | None = None) -> None:
        self.seeder = seeder

    def __call__(self, worker_id: int) -> None:
        ignore_stop_signals()
        if self.seeder is not None:
            self.seeder(worker_id)


def available_cpus() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_count(requested: int, batches: int, local_processes: int = 1) -> int:
    """DataLoader workers of one process: ``num_worker`` capped at its share of the CPU cores (the cores divided
    by the ``local_processes`` of the run on this machine) and at the ``batches`` to load."""
    return max(0, min(requested, available_cpus() // local_processes, batches))


def worker_note(config: dict[str, Any], train_samples: int, local_processes: int = 1) -> str | None:
    """A log line when the training loader uses fewer workers than ``num_worker`` asks for, else None."""
    requested = config["num_worker"]
    batches = math.ceil(train_samples / config["batch_size"])
    used = worker_count(requested, batches, local_processes)
    if used == requested:
        return None
    shared = local_processes > 1
    if used == available_cpus() // local_processes:
        limit = f"the {available_cpus()} CPU cores" + (f" shared by {local_processes} processes" if shared else "")
    else:
        limit = f"the {batches} batches"
    return (f"data loading: {used} worker(s){' per process' if shared else ''} instead of num_worker {requested}, "
            f"capped at {limit}")


def _loader(dataset: Dataset, sampler: Sampler, batch_size: int, config: dict[str, Any], runtime: Runtime,
            drop_last: bool, init: WorkerInit) -> DataLoader:
    """A DataLoader whose workers (as many as :func:`worker_count` allows) live as long as it does. Its own
    generator draws the workers' base seed at each new iterator, which would otherwise come from the global
    one: the training steps' random draws (dropout) then depend neither on the workers nor on where a
    resumed epoch starts."""
    workers = worker_count(config["num_worker"], math.ceil(len(sampler) / batch_size), local_world_size(runtime))
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=drop_last,
        pin_memory=runtime.device.type == "cuda", persistent_workers=workers > 0,
        worker_init_fn=init if workers else None,
        generator=torch.Generator().manual_seed(derive_seed(config["seed"], runtime.rank, 23)),
    )
