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


def nonfinite_samples(data: torch.Tensor, index: torch.Tensor, name_of: Callable[[int], str]) -> list[str]:
    """The names of the batch's samples whose input holds a NaN or an infinite value."""
    rows = (~torch.isfinite(data.reshape(len(data), -1))).any(dim=1).nonzero().flatten().tolist()
    return [name_of(int(index[row])) for row in rows]


class NonFiniteGuard:
    """Skips up to ``limit`` batches whose loss is NaN or infinite, with a log line each; the next one stops the
    run with one line naming the epoch, step and loss term (``RunStopped``), and the samples whose input is
    not finite when that is the cause (``name_of`` turns a batch index into a sample name); ``kept()`` says
    which checkpoint survives."""

    def __init__(self, limit: int, log: RunLog, runtime: Runtime, kept: Callable[[], str],
                 name_of: Callable[[int], str] = str) -> None:
        self.limit, self.log, self.runtime, self.kept, self.name_of = limit, log, runtime, kept, name_of
        self.skipped = 0

    def skip(self, losses: dict[str, torch.Tensor], total: torch.Tensor, epoch: int, step: int,
             data: torch.Tensor | None = None, index: torch.Tensor | None = None) -> bool:
        """True if this batch (inputs ``data``, dataset indices ``index``) is to be skipped; False if its loss is
        finite on every rank."""
        if not on_any_rank(not bool(torch.isfinite(total)), self.runtime):
            return False
        bad = [name for name, value in losses.items() if not torch.isfinite(value)]
        term = f"loss term {bad[0]!r} is {losses[bad[0]].item()}" if bad else f"the total loss is {total.item()}"
        terms = ", ".join(f"{name}={value.item():.4g}" for name, value in losses.items())
        where = f"epoch {epoch + 1}, step {step + 1}: {term} ({terms})"
        samples = nonfinite_samples(data, index, self.name_of) if data is not None and index is not None else []
        if samples:
            where += (f"; the input of {len(samples)} sample(s) is not finite, e.g. {', '.join(samples[:3])} "
                      "(a data problem: fix them or leave them out with exclude_names_file)")
        if self.skipped < self.limit:
            self.skipped += 1
            self.log.info(f"{where}: batch skipped ({self.skipped} of skip_nonfinite {self.limit})")
            return True
        advice = "" if samples else " (lower base_lr or set skip_nonfinite first)"
        raise RunStopped(f"{where}; {self.kept()}{advice}")
