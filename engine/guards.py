"""Guards of the training loop: batches whose loss is not finite, and stop requests seen by any rank."""
from __future__ import annotations

from collections.abc import Callable

import torch

from engine.distributed import Runtime, reduce_mean
from engine.errors import RunStopped
from engine.runlog import RunLog


def on_any_rank(flag: bool, runtime: Runtime) -> bool:
    """``flag`` OR-ed over all ranks, so that every rank takes the same branch (one all-reduce under DDP)."""
    if not runtime.distributed:
        return flag
    return bool(reduce_mean(torch.tensor(float(flag), device=runtime.device), runtime) > 0)


class NonFiniteGuard:
    """Skips up to ``limit`` batches whose loss is NaN or infinite, with a log line each; the next one stops the
    run with one line naming the epoch, step and loss term (``RunStopped``); ``kept()`` says which
    checkpoint survives."""

    def __init__(self, limit: int, log: RunLog, runtime: Runtime, kept: Callable[[], str]) -> None:
        self.limit, self.log, self.runtime, self.kept = limit, log, runtime, kept
        self.skipped = 0

    def skip(self, losses: dict[str, torch.Tensor], total: torch.Tensor, epoch: int, step: int) -> bool:
        """True if this batch is to be skipped; False if its loss is finite on every rank."""
        if not on_any_rank(not bool(torch.isfinite(total)), self.runtime):
            return False
        bad = [name for name, value in losses.items() if not torch.isfinite(value)]
        term = f"loss term {bad[0]!r} is {losses[bad[0]].item()}" if bad else f"the total loss is {total.item()}"
        terms = ", ".join(f"{name}={value.item():.4g}" for name, value in losses.items())
        where = f"epoch {epoch + 1}, step {step + 1}: {term} ({terms})"
        if self.skipped < self.limit:
            self.skipped += 1
            self.log.info(f"{where}: batch skipped ({self.skipped} of skip_nonfinite {self.limit})")
            return True
        raise RunStopped(f"{where}; {self.kept()} (lower base_lr or set skip_nonfinite first)")
