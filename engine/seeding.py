"""Reproducible randomness: seeds derived from (seed, epoch, rank, worker, ...) by NumPy's SeedSequence."""
from __future__ import annotations

import random

import numpy as np
import torch


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from any number of non-negative integers (e.g. seed, epoch, rank)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32).view(np.uint64)[0] >> 1)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class WorkerSeeder:
    """DataLoader ``worker_init_fn`` seeding each worker's global generators from seed, rank, epoch and worker id.

    The skeleton transforms draw from per-sample generators (seed, epoch, index), so their output never
    depends on the number of workers; this covers any other code that uses the global generators.
    """

    def __init__(self, seed: int, rank: int, epoch: int) -> None:
        self.seed, self.rank, self.epoch = seed, rank, epoch

    def __call__(self, worker_id: int) -> None:
        seed_everything(derive_seed(self.seed, self.rank, self.epoch, worker_id))
