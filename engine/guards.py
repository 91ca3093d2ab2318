"""Guards of the training loop: steps whose loss or gradients are not finite, and stop requests seen by any rank.

Nothing here makes a training step wait for the device. The backward pass of a non-finite loss leaves
non-finite gradients on every rank (:func:`guarded`; DDP averages them), the gradients are checked on the
device (:func:`optimizer_step`, GradScaler's ``found_inf``), a step found so is undone element by element
(:class:`UndoableStep`), and :class:`NonFiniteGuard` records it on the device; only its :meth:`check`, at the
logging interval and the end of an epoch, reads the records.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from engine.distributed import Runtime, all_gather_objects, reduce_mean
from engine.errors import RunStopped
from engine.runlog import RunLog

#: Samples with non-finite input named per skipped step.
SHOWN_SAMPLES = 3


def on_any_rank(flag: bool, runtime: Runtime) -> bool:
    """``flag`` OR-ed over all ranks, so that every rank takes the same branch (one all-reduce under DDP)."""
    if not runtime.distributed:
        return flag
    return bool(reduce_mean(torch.tensor(float(flag), device=runtime.device), runtime) > 0)


def guarded(total: torch.Tensor) -> torch.Tensor:
    """``total`` itself (times 1) when finite, else NaN: its backward pass then makes gradients non-finite even
    where an infinite loss has finite ones, so that the gradient check finds every non-finite loss."""
    return total * torch.where(torch.isfinite(total), 1.0, math.nan)


def nonfinite_gradients(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """A device tensor, 1 if a gradient of ``optimizer``'s parameters holds a NaN or an infinity, else 0 (one
    fused pass per device and dtype, as GradScaler checks them)."""
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            if parameter.grad is not None:
                groups.setdefault((parameter.grad.device, parameter.grad.dtype), []).append(parameter.grad)
    device = optimizer.param_groups[0]["params"][0].device
    found = torch.zeros(1, device=device)
    for (where, _), grads in groups.items():
        found_here = torch.zeros(1, device=where)
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found_here, torch.ones(1, device=where))
        found += found_here.to(device, non_blocking=True)
    return found


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> torch.Tensor:
    """Step ``optimizer`` on the gradients of a backward pass (of the ``scaler``-scaled loss under float16) and
    return whether they were not finite, as a 0-dim bool on the device: the step is then to be undone
    (:class:`UndoableStep`). Under float16 the scaler unscales the gradients, finds them finite or not and
    updates its scale, without the wait for the device of ``GradScaler.step``."""
    if scaler.is_enabled():
        scaler.unscale_(optimizer)
        found = sum(scaler._found_inf_per_device(optimizer).values())  # what GradScaler.step would read
        optimizer.step()
        scaler.update()
    else:
        found = nonfinite_gradients(optimizer)
        optimizer.step()
    return found.view(()) > 0


class UndoableStep:
    """What a training step changes in place — the buffers of ``module`` (BatchNorm statistics), the parameters
    and the state of ``optimizer`` — copied by :meth:`save` before the step and put back by :meth:`undo_if`
    after it when the step is to be skipped, decided on the device.

    The copies are flat, one per device and dtype; :meth:`undo_if` picks saved or new values element by element
    (``torch.where``: exact, and NaN-proof), and sets state that the step created to zero, the state before a
    first step (a skipped first step leaves SGD's momentum zero, which the next step turns into its gradient,
    and Adam's moments and count as fresh).
    """

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.module, self.optimizer = module, optimizer
        self._layout: tuple[int, ...] = ()
        self._saved_entries = 0
        self._groups: list[tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor, list[torch.Tensor],
                                 torch.Tensor]] = []

    def _tensors(self) -> list[torch.Tensor]:
        parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        state = [value for p in parameters for value in self.optimizer.state.get(p, {}).values()
                 if isinstance(value, torch.Tensor)]
        return [*self.module.buffers(), *parameters, *state]

    @torch.no_grad()
    def save(self) -> None:
        """Copy the tensors a step changes."""
        tensors = self._tensors()
        layout = tuple(map(id, tensors))
        if layout != self._layout:
            self._layout, self._groups = layout, _flat_copies(tensors)
        for group, saved_views, *_ in self._groups:
            torch._foreach_copy_(saved_views, group)
        self._saved_entries = self._state_entries()

    @torch.no_grad()
    def undo_if(self, skip: torch.Tensor) -> None:
        """Where ``skip`` (a 0-dim bool on the device) holds, put back the tensors :meth:`save` copied."""
        for group, _, saved, current_views, current in self._groups:
            torch._foreach_copy_(current_views, group)
            torch.where(skip, saved, current, out=current)
            torch._foreach_copy_(group, current_views)
        if self._state_entries() == self._saved_entries:
            return
        saved_ids = set(self._layout)
        for created in (t for t in self._tensors() if id(t) not in saved_ids):  # by a first step
            created.copy_(torch.where(skip, torch.zeros((), dtype=created.dtype, device=created.device), created))

    def _state_entries(self) -> int:
        return sum(len(state) for state in self.optimizer.state.values())


def _flat_copies(tensors: list[torch.Tensor]) -> list[tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor,
                                                             list[torch.Tensor], torch.Tensor]]:
    """Per device and dtype: the tensors, views of a flat saved copy and of a flat scratch copy shaped as them,
    and the two flat copies."""
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for tensor in tensors:
        groups.setdefault((tensor.device, tensor.dtype), []).append(tensor)
    flat = []
    for (device, dtype), group in groups.items():
        sizes = [t.numel() for t in group]
        saved, current = (torch.empty(sum(sizes), device=device, dtype=dtype) for _ in range(2))
        views = [[part.view_as(t) for part, t in zip(copy.split(sizes), group, strict=True)] for copy in (saved, current)]
        flat.append((group, views[0], saved, views[1], current))
    return flat


class NonFiniteGuard:
    """Skips up to ``limit`` steps whose loss (or gradient) is NaN or infinite, with a log line each; the next
    one stops the run with one line naming the epoch, step and loss term (``RunStopped``), and the samples whose
    input is not finite when that is the cause (``name_of`` turns a dataset index into a sample name);
    ``kept()`` says which checkpoint survives; ``skipped`` counts the steps skipped so far (a resumed run's).

    :meth:`record` notes each step on the device; :meth:`check` reads what was noted since its last call (a
    wait for the device, and under DDP an exchange between the ranks): call it at the logging interval, at the
    end of the epoch and before any checkpoint is written. The step is undone on the device meanwhile.
    """

    def __init__(self, limit: int, log: RunLog, runtime: Runtime, kept: Callable[[], str],
                 name_of: Callable[[int], str] = str, skipped: int = 0) -> None:
        self.limit, self.log, self.runtime, self.kept, self.name_of = limit, log, runtime, kept, name_of
        self.skipped = skipped
        self._terms: list[str] = []
        self._rows: torch.Tensor | None = None  # the first ``limit + 1`` records since the last check, then scratch
        self._count: torch.Tensor | None = None  # records since the last check
        self._slots: torch.Tensor | None = None  # the row numbers of ``_rows``
        self._indices: dict[int, torch.Tensor] = {}  # dataset indices of each step since the last check

    @property
    def capacity(self) -> int:
        """The records kept between two checks: enough to reach the step that stops the run."""
        return self.limit + 1

    @torch.no_grad()
    def record(self, step: int, losses: dict[str, torch.Tensor], total: torch.Tensor, skipped: torch.Tensor,
               data: torch.Tensor, index: torch.Tensor) -> None:
        """Note global step ``step`` (0-based): when ``skipped`` (a 0-dim bool on the device) holds, its loss
        terms and the batch rows (of ``data``; ``index``: their dataset indices) whose input is not finite."""
        device = total.device
        if self._rows is None:
            self._terms = list(losses)
            width = 3 + len(losses) + SHOWN_SAMPLES  # step, total, terms, bad inputs, their first rows
            self._rows = torch.zeros(self.capacity + 1, width, dtype=torch.float64, device=device)
            self._count = torch.zeros((), dtype=torch.int64, device=device)
            self._slots = torch.arange(self.capacity + 1, device=device)
        bad = ~torch.isfinite(data.reshape(len(data), -1)).all(dim=1)
        rows = torch.arange(len(bad), device=device)
        first = torch.where(bad, rows, len(bad)).sort().values[:SHOWN_SAMPLES].double()
        first = torch.nn.functional.pad(first, (0, SHOWN_SAMPLES - len(first)), value=len(bad))
        row = torch.cat([torch.full((1,), step, dtype=torch.float64, device=device),
                         torch.stack([total, *losses.values()]).double(), bad.sum().double().view(1), first])
        slot = torch.where(skipped & (self._count < self.capacity), self._count, self.capacity)
        self._rows = torch.where((self._slots == slot).unsqueeze(1), row, self._rows)
        self._count += skipped
        self._indices[step] = index

    def check(self, epoch: int) -> None:
        """Log each step skipped since the last check; raise ``RunStopped`` at the first beyond ``limit``."""
        events: dict[int, list[tuple[list[float], int, list[str]]]] = {}
        for records in all_gather_objects(self._read(), self.runtime):
            for step, *record in records:
                events.setdefault(step, []).append(record)
        for step in sorted(events):
            self._skip_or_stop(epoch, step, events[step])

    def _read(self) -> list[tuple[int, list[float], int, list[str]]]:
        """This rank's records since the last check, as (step, [total, terms...], how many samples have
        non-finite input, the first names of those); clears them."""
        indices, self._indices = self._indices, {}
        count = int(self._count) if self._count is not None else 0
        if not count:
            return []
        terms = len(self._terms)
        records = []
        for row in self._rows[:min(count, self.capacity)].tolist():
            step, values, bad = int(row[0]), row[1:2 + terms], int(row[2 + terms])
            names = [self.name_of(int(indices[step][int(position)])) for position in row[3 + terms:][:bad]]
            records.append((step, values, bad, names))
        self._count.zero_()
        return records

    def _skip_or_stop(self, epoch: int, step: int, seen: list[tuple[list[float], int, list[str]]]) -> None:
        """Count step ``step`` as skipped (a log line) or stop the run; ``seen``: each rank's record of it."""
        values = next((values for values, *_ in seen if not math.isfinite(values[0])), seen[0][0])
        total, terms = values[0], dict(zip(self._terms, values[1:], strict=True))
        bad = [name for name, value in terms.items() if not math.isfinite(value)]
        if bad:
            cause = f"loss term {bad[0]!r} is {terms[bad[0]]}"
        elif not math.isfinite(total):
            cause = f"the total loss is {total}"
        else:
            cause = "a gradient is not finite, the loss is finite"
        where = f"epoch {epoch + 1}, step {step + 1}: {cause} ({', '.join(f'{k}={v:.4g}' for k, v in terms.items())})"
        inputs, names = sum(count for _, count, _ in seen), [name for *_, rank_names in seen for name in rank_names]
        if inputs:
            where += (f"; the input of {inputs} sample(s) is not finite, e.g. {', '.join(names[:SHOWN_SAMPLES])} "
                      "(a data problem: fix them or leave them out with exclude_names_file)")
        if self.skipped < self.limit:
            self.skipped += 1
            self.log.info(f"{where}: batch skipped ({self.skipped} of skip_nonfinite {self.limit})")
            return
        advice = "" if inputs else " (lower base_lr or set skip_nonfinite first)"
        raise RunStopped(f"{where}; {self.kept()}{advice}")
