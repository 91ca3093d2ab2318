"""Datasets and DataLoaders of a run: seeded shuffling per epoch, sharding across ranks."""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler

from engine.distributed import Runtime
from engine.seeding import WorkerSeeder, derive_seed
from feeders.registry import build_feeder


def build_dataset(config: dict[str, Any], split: str) -> Dataset:
    """The dataset of ``split`` ('train' or 'test') built from the config's feeder and its arguments."""
    return build_feeder(config["feeder"], dict(config[f"{split}_feeder_args"]), seed=config["seed"])


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` of a dataset, in order: each rank evaluates its own share."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = range(rank, length, world_size)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def train_loader(dataset: Dataset, config: dict[str, Any], runtime: Runtime, epoch: int) -> DataLoader:
    """The shuffled training loader of ``epoch``; its order depends only on (seed, epoch, rank)."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    if runtime.distributed:
        sampler: Sampler[int] = DistributedSampler(dataset, runtime.world_size, runtime.rank, shuffle=True,
                                                   seed=config["seed"], drop_last=True)
        sampler.set_epoch(epoch)
    else:
        generator = torch.Generator().manual_seed(derive_seed(config["seed"], epoch, 17))
        sampler = RandomSampler(dataset, generator=generator)
    return _loader(dataset, sampler, config["batch_size"], config, runtime, epoch,
                   drop_last=len(sampler) >= config["batch_size"])


def test_loader(dataset: Dataset, config: dict[str, Any], runtime: Runtime) -> DataLoader:
    """The evaluation loader: this rank's share of the dataset, in dataset order."""
    sampler = ShardSampler(len(dataset), runtime.rank, runtime.world_size)
    return _loader(dataset, sampler, config["test_batch_size"], config, runtime, epoch=0, drop_last=False)


def _loader(dataset: Dataset, sampler: Sampler[int], batch_size: int, config: dict[str, Any], runtime: Runtime,
            epoch: int, drop_last: bool) -> DataLoader:
    workers = config["num_worker"]
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=drop_last,
        pin_memory=runtime.device.type == "cuda",
        worker_init_fn=WorkerSeeder(config["seed"], runtime.rank, epoch) if workers else None,
    )
