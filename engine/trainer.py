"""The training and test loops: plain functions over a config dict, in the manner of torchvision's references."""
from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from engine.checkpoint import (
    check_state_dict,
    extract_state_dict,
    initialise_from_weights,
    load_precision_state,
    load_state,
    load_training_checkpoint,
    read_torch_file,
    resume_position,
    rng_state,
    save_checkpoint,
    save_weights,
    set_rng_state,
    unwrap,
)
from engine.config import dump_config
from engine.data import build_dataset, check_labels, set_loader_epoch, test_loader, train_loader, worker_note
from engine.distributed import (
    Runtime,
    all_gather_objects,
    broadcast_buffers,
    local_world_size,
    native_bf16_flags,
    reduce_mean,
)
from engine.errors import InputError, RunStopped
from engine.fileio import write_text_atomic
from engine.guards import NonFiniteGuard, UndoableStep, guarded, on_any_rank, optimizer_step
from engine.history import read_history, write_history
from engine.interrupt import StopRequests
from engine.launch import run_on_devices
from engine.metrics import confusion_matrix, topk_accuracy
from engine.objective import build_objective, mmcl_settings
from engine.plots import draw_curves, write_evaluation_pictures
from engine.refine import load_refinement, refined_scores
from engine.reports import remove_evaluation, score_paths, write_evaluation
from engine.runlog import RunLog
from engine.schedule import build_optimizer, learning_rate, load_optimizer_state, set_learning_rate
from engine.seeding import derive_seed, seed_everything
from engine.workdir import BEST_CHECKPOINT, LAST_CHECKPOINT, check_train_dir, create_train_dir
from model.registry import build_backbone

#: Epoch statistics kept out of the epoch's log line.
NOT_LOGGED = ("data_share", "seconds", "batches")
#: The training-curves picture, redrawn after each evaluation.
CURVES = "curves.png"


def build_model(config: dict[str, Any], num_class: int | None) -> nn.Module:
    """The configured backbone; ``num_class`` fills ``model_args.num_class`` when the config leaves it out."""
    args = dict(config["model_args"])
    if "num_class" not in args and num_class is not None:
        args["num_class"] = num_class
    return build_backbone(config["model"], args)


def amp_dtype(config: dict[str, Any], device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``amp``: ``float16`` / ``bfloat16`` as named, ``true`` float16 on CUDA and bfloat16
    on the CPU; None (float32) for ``false``."""
    amp = config["amp"]
    if amp is False:
        return None
    if amp is True:
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    return getattr(torch, amp)


def autocast_context(config: dict[str, Any], device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision in the dtype of :func:`amp_dtype`, if any."""
    dtype = amp_dtype(config, device)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(config: dict[str, Any], device: torch.device) -> torch.amp.GradScaler:
    """The loss scaler of a run: enabled under float16 autocast (its narrow exponent underflows small
    gradients), disabled otherwise (bfloat16 has float32's exponent)."""
    return torch.amp.GradScaler(device.type, enabled=amp_dtype(config, device) == torch.float16)


def amp_note(config: dict[str, Any], device: torch.device, cpuinfo: str | None = None) -> str | None:
    """The log line of ``amp``: the dtype, and on the CPU whether it computes bfloat16 natively (``cpuinfo``:
    the text of /proc/cpuinfo, read if not given); without native bf16 a warning that it is slower there."""
    dtype = amp_dtype(config, device)
    if dtype is None:
        return None
    if dtype == torch.float16:
        where = "CUDA" if device.type == "cuda" else "the CPU (most CPUs compute float16 slowly; amp true takes bfloat16)"
        return f"amp: float16 autocast with loss scaling on {where}"
    if device.type == "cuda":
        return "amp: bfloat16 autocast on CUDA" + ("" if torch.cuda.is_bf16_supported() else
                                                   " (warning: this GPU has no native bfloat16)")
    flags = native_bf16_flags(cpuinfo)
    if flags is None:
        return "amp: bfloat16 autocast on the CPU (/proc/cpuinfo unreadable: native bfloat16 support unknown)"
    if not flags:
        return ("warning: amp: this CPU has no native bfloat16 (no avx512_bf16 / amx_bf16 / bf16 flag in "
                "/proc/cpuinfo): bfloat16 autocast is emulated and slower than float32 here")
    return f"amp: bfloat16 autocast on the CPU (native: {', '.join(flags)})"


def device_notes(config: dict[str, Any], runtime: Runtime) -> list[str]:
    """The log lines of the devices and precision: the runtime's, ``amp``'s and, on CUDA, ``tf32``'s."""
    tf32 = None
    if runtime.device.type == "cuda":
        tf32 = ("tf32: on (float32 products and convolutions in TF32)" if config["tf32"] else
                "tf32: off (full float32 products and convolutions; tf32: true allows TF32 on Ampere or newer)")
    return [note for note in (runtime.note, amp_note(config, runtime.device), tf32) if note]


def wrap_for_devices(model: nn.Module, runtime: Runtime) -> nn.Module:
    """Move ``model`` to the device; DDP when distributed, DataParallel for several ``--device`` ids (``parallel: dp``)."""
    model = model.to(runtime.device)
    if runtime.distributed:
        ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if runtime.data_parallel_ids:
        return nn.DataParallel(model, device_ids=runtime.data_parallel_ids)
    return model


@torch.inference_mode()
def predict(model: nn.Module, dataset, config: dict[str, Any], runtime: Runtime, desc: str,
            loader: DataLoader | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Logits of the whole dataset in dataset order, gathered from all ranks: (indices, scores); ``loader``: the
    run's :func:`test_loader` of ``dataset`` (made if not given)."""
    model.eval()
    indices, scores = [], []
    for data, _, index in tqdm(loader or test_loader(dataset, config, runtime), desc=desc, leave=False,
                               disable=None if runtime.is_main else True):
        with autocast_context(config, runtime.device):
            logits = model(data.float().to(runtime.device, non_blocking=True))
        scores.append(logits.float().cpu().numpy())
        indices.append(index.numpy())
    local = (np.concatenate(indices) if indices else np.zeros(0, np.int64),
             np.concatenate(scores) if scores else np.zeros((0, 0), np.float32))
    parts = all_gather_objects(local, runtime)
    order = np.concatenate([p[0] for p in parts])
    stacked = np.concatenate([p[1] for p in parts if len(p[0])])
    sort = np.argsort(order, kind="stable")
    return order[sort], stacked[sort]


def evaluate(backbone: nn.Module, dataset, config: dict[str, Any], runtime: Runtime, work_dir: Path, stem: str,
             log: RunLog, pictures: bool = False, loader: DataLoader | None = None) -> dict[str, float]:
    """Score ``dataset`` (through ``loader``, if given), log top-k, write the evaluation files under ``stem``;
    return the metrics."""
    indices, scores = predict(backbone, dataset, config, runtime, desc=stem, loader=loader)
    return report_scores(scores, indices, dataset, config, runtime, work_dir, stem, log, pictures)


def report_scores(scores: np.ndarray, indices: np.ndarray, dataset, config: dict[str, Any], runtime: Runtime,
                  work_dir: Path, stem: str, log: RunLog, pictures: bool = False) -> dict[str, float]:
    """Top-k and loss of ``scores`` (rows: the samples ``indices`` of ``dataset``), logged and written under
    ``stem`` (with the evaluation pictures if ``pictures`` and the config's ``plots``); returns the metrics."""
    labels = np.asarray(dataset.label)[indices]
    names = [dataset.sample_name[i] for i in indices]
    loss = float(torch.nn.functional.cross_entropy(torch.from_numpy(scores), torch.from_numpy(labels)))
    nonfinite = [name for name, row in zip(names, scores, strict=True) if not np.isfinite(row).all()]
    if nonfinite and runtime.is_main:
        log.info(f"warning: {stem}: {len(nonfinite)} sample(s) have non-finite scores, e.g. "
                 f"{', '.join(nonfinite[:3])} (their input is probably not finite): the mean loss is {loss} and "
                 "top-k includes them")
    metrics = {f"top{k}": topk_accuracy(scores, labels, k) for k in config["show_topk"]}
    metrics["loss"] = loss
    if runtime.is_main:
        class_names = getattr(dataset, "class_names", None)
        write_evaluation(work_dir, stem, names, scores, labels, config["save_score"], class_names)
        if pictures and config["plots"]:
            confusion = confusion_matrix(scores.argmax(axis=1), labels, scores.shape[1])
            write_evaluation_pictures(work_dir, stem, confusion, class_names)
        shown = ", ".join(f"top-{k} {100 * metrics[f'top{k}']:.2f}%" for k in config["show_topk"])
        log.info(f"{stem}: {len(labels)} samples, mean loss {loss:.4f}, {shown}")
    return metrics


class EpochMeter:
    """The epoch's loss terms (each times its batch's size), correct predictions and samples, summed on the device
    over the steps not skipped; :meth:`means` reads them once."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.sums: torch.Tensor | None = None
        self.correct: torch.Tensor | None = None
        self.seen: torch.Tensor | None = None

    @torch.no_grad()
    def add(self, losses: dict[str, torch.Tensor], total: torch.Tensor, logits: torch.Tensor, label: torch.Tensor,
            kept: torch.Tensor) -> None:
        """Add a step's values unless ``kept`` (a 0-dim bool on the device) is false; float64 sums of float32
        values, as Python adds them."""
        values = torch.stack([*losses.values(), total]).double() * len(label)
        if self.sums is None:
            self.names = [*losses, "loss"]
            self.sums = torch.zeros_like(values)
            self.correct, self.seen = (torch.zeros((), dtype=torch.int64, device=values.device) for _ in range(2))
        self.sums += torch.where(kept, values, 0.0)
        self.correct += torch.where(kept, (logits.argmax(dim=1) == label).sum(), 0)
        self.seen += torch.where(kept, len(label), 0)

    def means(self, runtime: Runtime) -> dict[str, float]:
        """The mean of each loss term and ``loss``, and ``acc``, averaged over the ranks."""
        sums, correct, seen = ([], 0, 0) if self.sums is None else (self.sums.tolist(), int(self.correct),
                                                                     int(self.seen))
        stats = {name: total / max(seen, 1) for name, total in zip(self.names, sums, strict=True)}
        stats["acc"] = correct / max(seen, 1)
        means = reduce_mean(torch.tensor(list(stats.values()), device=runtime.device), runtime)
        return dict(zip(stats, means.tolist(), strict=True))


def train_one_epoch(objective: nn.Module, loader, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                    config: dict[str, Any], runtime: Runtime, epoch: int, step: int, log: RunLog,
                    guard: NonFiniteGuard | None = None, stop: StopRequests | None = None, first_batch: int = 0
                    ) -> tuple[int, dict[str, float]]:
    """One pass over ``loader`` (the epoch's batches after its first ``first_batch``), ended early by a stop
    request, each step at the schedule's learning rate; returns the new global step and the mean losses,
    accuracy, timings and ``batches`` done (``len(loader)`` unless stopped). Without ``guard`` a non-finite
    loss stops the run.

    No step waits for the device except every ``log_interval``-th (the logging step): the losses add up on the
    device, a step whose loss or gradients are not finite is undone there (when ``guard`` may skip it, or the
    float16 scaler does), and the guard reads what happened at the logging steps and the end. A stop request
    ends the pass after the step it came in, under DDP after the next logging step (where the ranks agree).
    """
    guard = guard or NonFiniteGuard(0, log, runtime, lambda: "no checkpoint is kept")
    stop = stop or StopRequests()
    objective.train()
    meter = EpochMeter()
    # without skip_nonfinite a skipped step stops the run at the next check, before any checkpoint: nothing to undo
    undo = UndoableStep(unwrap(objective), optimizer) if guard.limit or scaler.is_enabled() else None
    done = 0
    data_time = compute_time = 0.0
    tick = time.perf_counter()
    batches = first_batch + len(loader)
    bar = tqdm(loader, desc=f"epoch {epoch + 1}", leave=False, disable=None if runtime.is_main else True)
    for data, label, index, *extras in bar:
        set_learning_rate(optimizer, learning_rate(epoch, config, first_batch + done, batches))
        data = data.float().to(runtime.device, non_blocking=True)
        label = label.long().to(runtime.device, non_blocking=True)
        extras = unwrap(objective).prepare_inputs([extra.to(runtime.device, non_blocking=True) for extra in extras])
        started = time.perf_counter()
        data_time += started - tick
        if undo is not None:
            undo.save()
        with autocast_context(config, runtime.device):
            logits, losses = objective(data, label, *extras)
        losses = {name: value.float().mean() for name, value in losses.items()}
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(guarded(loss)).backward()
        nonfinite = optimizer_step(optimizer, scaler)
        if undo is not None:
            undo.undo_if(nonfinite)
        # under float16 an overflow of the scaled gradients is the scaler's business: the guard counts losses
        skipped = ~torch.isfinite(loss) if scaler.is_enabled() else nonfinite
        meter.add(losses, loss, logits, label, ~skipped)
        guard.record(step, losses, loss, skipped, data, index)
        step += 1
        done += 1
        tick = time.perf_counter()
        compute_time += tick - started
        if step % config["log_interval"] == 0:
            guard.check(epoch)
            values = torch.stack([*losses.values(), loss]).tolist()
            if runtime.is_main:
                bar.set_postfix(loss=f"{values[-1]:.3f}")
                log.scalars({f"train/{name}": value for name, value in zip(losses, values)}, step)
            if on_any_rank(stop.received is not None, runtime):
                break
        elif stop.received is not None and not runtime.distributed:
            break
    guard.check(epoch)
    stats = meter.means(runtime)
    stats["data_share"] = data_time / max(data_time + compute_time, 1e-12)
    stats["seconds"] = data_time + compute_time
    stats["batches"] = done
    return step, stats


def _training_state(objective: nn.Module, optimizer, scaler, config, runtime: Runtime, guard: NonFiniteGuard,
                    epoch: int, step: int, best: dict[str, Any], batch: int = 0,
                    rng: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The checkpoint content after ``batch`` batches of ``epoch`` (0: after the whole epoch); ``rng``: every
    rank's generators (needed to resume inside an epoch), else this process's."""
    next_epoch = epoch if batch else epoch + 1
    return {
        "model": unwrap(objective).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "scheduler": {"epoch": next_epoch, "lr": optimizer.param_groups[0]["lr"]},
        "epoch": next_epoch,
        "batch": batch,
        "step": step,
        "best": best,
        "rng": rng or [rng_state()],
        "config": {k: v for k, v in config.items() if k not in ("command",)},
        "loader": loader_setup(config, runtime),
        "skipped_nonfinite": guard.skipped,
    }


def loader_setup(config: dict[str, Any], runtime: Runtime) -> dict[str, int]:
    """What a position inside an epoch depends on: the per-process batch size and the number of processes."""
    return {"batch_size": runtime.share(config["batch_size"]), "world_size": runtime.world_size}


def own_generators(saved: list[dict[str, Any]] | dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    """This rank's generator states in a checkpoint's ``rng``: its own entry when every rank's is there, else
    rank 0's (a checkpoint of an epoch's end, or older than the per-rank list)."""
    states = saved if isinstance(saved, list) else [saved]
    return states[runtime.rank] if len(states) == runtime.world_size else states[0]


@contextlib.contextmanager
def logged_stops(log: RunLog) -> Iterator[None]:
    """Log a ``RunStopped`` leaving the block and close the log before it reaches the command line."""
    try:
        yield
    except RunStopped as stopped:
        log.info(f"stopped: {stopped}")
        log.close()
        raise


def kept_checkpoint(work_dir: Path) -> str:
    """What a stopped run leaves to resume from."""
    last = work_dir / LAST_CHECKPOINT
    return f"{last} is kept: continue with --resume" if last.is_file() else "no checkpoint was written yet"


@contextlib.contextmanager
def writing(what: Path | str, work_dir: Path) -> Iterator[None]:
    """Turn a failed write (disk full, work_dir gone or read-only) into ``RunStopped`` naming the file and
    what survives; the atomic writers leave the previous file intact."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or " ".join(str(error).split())
        raise RunStopped(f"could not write {what} ({reason}); {kept_checkpoint(work_dir)}") from None


def train(config: dict[str, Any]) -> dict[str, Any]:
    """Train as configured; return the final results (also written to ``results.json``)."""
    return run_on_devices(_train, config)


def _train(config: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    # Everything that can fail on bad input is built and checked before the first file is written.
    resume_from = check_train_dir(config) if runtime.is_main else None
    if runtime.distributed:
        resume_from = all_gather_objects(resume_from, runtime)[0]
    seed_everything(config["seed"])
    torch.use_deterministic_algorithms(bool(config["deterministic"]), warn_only=True)

    train_set, test_set = build_dataset(config, "train"), build_dataset(config, "test")
    backbone = build_model(config, getattr(train_set, "num_class", None))
    for split, dataset in (("train", train_set), ("test", test_set)):
        check_labels(dataset, backbone, split, config)
    objective, train_set, notes = build_objective(config, backbone, train_set)
    if config["weights"] and resume_from is None:
        notes.append(initialise_from_weights(objective, config["weights"], config["ignore_weights"]))
    state = load_training_checkpoint(resume_from) if resume_from is not None else None
    if state is not None:
        check_state_dict(objective, state["model"], resume_from)
        unwrap(objective).load_state_dict(state["model"])
    frozen_encoder = getattr(objective, "frozen_rgb_encoder", None)
    if frozen_encoder is not None:
        frozen_encoder.to(runtime.device)
    objective = wrap_for_devices(objective, runtime)
    optimizer = build_optimizer([p for p in objective.parameters() if p.requires_grad], config)
    scaler = grad_scaler(config, runtime.device)
    precision = None
    if state is not None:
        try:
            load_optimizer_state(optimizer, state["optimizer"])
            precision = load_precision_state(scaler, state, config["amp"])
        except (ValueError, KeyError, RuntimeError) as error:
            raise InputError(f"{resume_from}: its optimizer state does not fit this config ({error})") from None
    loader, evaluation_loader = train_loader(train_set, config, runtime), test_loader(test_set, config, runtime)

    checkpoint_bytes = sum(t.numel() * t.element_size() for t in unwrap(objective).state_dict().values())
    work_dir = (create_train_dir(config, resume_from, 2 * checkpoint_bytes) if runtime.is_main
                else Path(config["work_dir"]))
    log = RunLog(work_dir, enabled=runtime.is_main)
    if resume_from is None and runtime.is_main:
        with writing("config.yaml", work_dir):
            write_text_atomic(work_dir / "config.yaml", dump_config(config))
    log.info(f"command: {config['command']}")
    for note in device_notes(config, runtime):
        log.info(note)
    if config["ignored_keys"]:
        log.info(f"ignored public config keys: {', '.join(config['ignored_keys'])}")
    data_notes = [*getattr(train_set, "notes", []), *getattr(test_set, "notes", [])]
    for note in [*data_notes, *notes, worker_note(config, len(train_set), local_world_size(runtime))]:
        if note:
            log.info(note)
    n_params = sum(p.numel() for p in backbone.parameters())
    log.info(f"model {config['model']}: {n_params:,} parameters; train {len(train_set)} samples, "
             f"test {len(test_set)} samples")

    start_epoch, first_batch, step = config["start_epoch"], 0, 0
    best: dict[str, Any] = {"top1": -1.0, "epoch": None}
    if state is not None:
        start_epoch, step, best = state["epoch"], state["step"], state["best"]
        first_batch, moved = resume_position(state, loader_setup(config, runtime))
        log.info(f"resumed from {resume_from} at epoch {start_epoch + 1}"
                 + (f", batch {first_batch + 1}" if first_batch else "") + f" (step {step})")
        for note in (moved, precision):
            if note:
                log.info(note)

    history = read_history(work_dir, start_epoch) if state is not None else []
    last_metrics: dict[str, float] = {}
    stats: dict[str, float] = {}
    model_backbone = unwrap(objective).backbone
    eval_model = nn.DataParallel(model_backbone, runtime.data_parallel_ids) if runtime.data_parallel_ids else model_backbone
    names = train_set.sample_name
    guard = NonFiniteGuard(config["skip_nonfinite"], log, runtime, lambda: kept_checkpoint(work_dir),
                           lambda index: names[index % len(names)],
                           skipped=state.get("skipped_nonfinite", 0) if state is not None else 0)
    with StopRequests() as stop, logged_stops(log):
        for epoch in range(start_epoch, config["num_epoch"]):
            seed_everything(derive_seed(config["seed"], runtime.rank, epoch))
            if first_batch:  # the generators as they were when the run was stopped mid-epoch
                note = set_rng_state(own_generators(state["rng"], runtime))
                if note:
                    log.info(note)
            set_loader_epoch(loader, epoch, first_batch)
            lr = learning_rate(epoch, config, 0, first_batch + len(loader))  # reported: its first step's
            started = time.perf_counter()
            step, stats = train_one_epoch(objective, loader, optimizer, scaler, config, runtime, epoch, step, log,
                                          guard, stop, first_batch)
            if stats["batches"] < len(loader):
                first_batch += stats["batches"]
                generators = all_gather_objects(rng_state(), runtime)
                if runtime.is_main:
                    with writing(LAST_CHECKPOINT, work_dir):
                        save_checkpoint(work_dir / LAST_CHECKPOINT, _training_state(
                            objective, optimizer, scaler, config, runtime, guard, epoch, step, best,
                            batch=first_batch, rng=generators))
                raise _stopped(stop, f"epoch {epoch + 1}, batch {first_batch}", work_dir)
            first_batch = 0
            broadcast_buffers(unwrap(objective), runtime)  # evaluate and save one model, rank 0's, on every rank
            log.info(f"epoch {epoch + 1}/{config['num_epoch']}: lr {lr:.4g}, "
                     + ", ".join(f"{k} {v:.4f}" for k, v in stats.items() if k not in NOT_LOGGED)
                     + f", {time.perf_counter() - started:.1f}s (data loading {100 * stats['data_share']:.1f}%)")
            log.scalars({"train/lr": lr, "train/acc": stats["acc"], "train/loss_epoch": stats["loss"]}, epoch + 1)
            record = {"epoch": epoch + 1, "lr": lr, **{k: v for k, v in stats.items() if k not in NOT_LOGGED},
                      "seconds": stats["seconds"]}
            history.append(record)

            is_last = epoch + 1 == config["num_epoch"]
            stopping = on_any_rank(stop.received is not None, runtime) and not is_last  # save first, at once
            due = (epoch + 1) % config["eval_interval"] == 0 or is_last
            if due and not stopping:
                stem = f"epoch{epoch + 1}_test"
                with writing(f"the evaluation files {stem}_*", work_dir):
                    evaluated = evaluate(eval_model, test_set, config, runtime, work_dir, stem, log, pictures=is_last,
                                         loader=evaluation_loader)
                log.scalars({f"test/{k}": v for k, v in evaluated.items()}, epoch + 1)
                record.update({f"test_{k}": v for k, v in evaluated.items()})
                if runtime.is_main and config["plots"]:
                    with writing(CURVES, work_dir):
                        draw_curves(history, work_dir / CURVES)
                last_metrics = {**evaluated, "epoch": epoch + 1}
                improved = evaluated["top1"] > best["top1"]
                superseded = best["epoch"] if improved else (None if is_last else epoch + 1)
                if improved:
                    best = {**evaluated, "epoch": epoch + 1}
                    if runtime.is_main:
                        with writing(BEST_CHECKPOINT, work_dir):
                            save_checkpoint(work_dir / BEST_CHECKPOINT, _training_state(
                                objective, optimizer, scaler, config, runtime, guard, epoch, step, best))
                if runtime.is_main and superseded is not None:
                    remove_evaluation(work_dir, f"epoch{superseded}_test")
            if runtime.is_main:
                with writing("history.json", work_dir):
                    write_history(work_dir, history)
                if epoch + 1 >= config["save_epoch"] and (epoch + 1) % config["save_interval"] == 0:
                    name = f"runs-{epoch + 1}-{step}.pt"
                    with writing(name, work_dir):
                        save_weights(work_dir / name, model_backbone)
                with writing(LAST_CHECKPOINT, work_dir):
                    save_checkpoint(work_dir / LAST_CHECKPOINT, _training_state(
                        objective, optimizer, scaler, config, runtime, guard, epoch, step, best))
            if stopping:
                raise _stopped(stop, f"the end of epoch {epoch + 1}" + (" (its evaluation skipped)" if due else ""),
                               work_dir)

    settings = mmcl_settings(config)
    evaluations = sum("test_top1" in record for record in history)
    results = {"last": last_metrics, "best": best, "last_epoch_train": stats,
               "model": config["model"], "mmcl": bool(settings["fam"] or settings["frm"] or settings["helpers"]),
               "parameters": n_params,
               "test_samples": len(test_set), "evaluations": evaluations, "eval_interval": config["eval_interval"],
               "note": f"best is the highest test top-1 of {evaluations} evaluations (every {config['eval_interval']} "
                       "epoch(s)), selected on the test set as the public CTR-GCN/MMCL code does; report last too"}
    if runtime.is_main:
        with writing("results.json", work_dir):
            write_text_atomic(work_dir / "results.json", json.dumps(results, indent=2) + "\n")
        log.info(f"done: last top-1 {100 * last_metrics.get('top1', math.nan):.2f}% "
                 f"(epoch {last_metrics.get('epoch')}), best top-1 {100 * best['top1']:.2f}% "
                 f"(epoch {best['epoch']}, the best of {evaluations} evaluations)")
    log.close()
    return results


def _stopped(stop: StopRequests, where: str, work_dir: Path) -> RunStopped:
    """The ``RunStopped`` of a stop request honoured at ``where`` (exit status 128 + signal number)."""
    signal_name = stop.received.name if stop.received is not None else "a stop request on another rank"
    return RunStopped(f"{signal_name} received: stopped at {where}; {kept_checkpoint(work_dir)}",
                      exit_status=128 + int(stop.received or 15))


def test(config: dict[str, Any]) -> dict[str, float]:
    """Evaluate ``weights`` on the test split; write scores and reports into the work_dir."""
    return run_on_devices(_test, config)


def _test(config: dict[str, Any], runtime: Runtime) -> dict[str, float]:
    if not config["weights"]:
        raise InputError("--phase test needs --weights (a checkpoint or a public CTR-GCN weights file)")
    work_dir, weights = Path(config["work_dir"]), config["weights"]
    stem = f"test_{Path(weights).stem}"
    refine = config["refine_text_features"]
    stems = [stem, f"{stem}_refine"] if refine else [stem]
    existing = [p for name in stems for p in score_paths(work_dir, name) if p.exists()]
    if existing and not config["overwrite"]:
        raise InputError(f"{existing[0]} exists: pass --overwrite to replace the earlier test results")
    test_set = build_dataset(config, "test")
    backbone = build_model(config, getattr(test_set, "num_class", None))
    check_labels(test_set, backbone, "test", config)
    content = read_torch_file(weights)
    load_state(backbone, extract_state_dict(content, weights), weights, config["ignore_weights"])
    frm = load_refinement(content, weights, backbone.fc.out_features) if refine else None
    work_dir.mkdir(parents=True, exist_ok=True)  # only now: a failed start leaves nothing behind
    log = RunLog(work_dir, enabled=runtime.is_main, tensorboard=False)
    log.info(f"command: {config['command']}")
    for note in device_notes(config, runtime):
        log.info(note)
    for note in getattr(test_set, "notes", []):
        log.info(note)
    indices, scores = predict(wrap_for_devices(backbone, runtime), test_set, config, runtime, desc=stem)
    metrics = report_scores(scores, indices, test_set, config, runtime, work_dir, stem, log, pictures=True)
    if frm is not None:
        names = [test_set.sample_name[i] for i in indices]
        refined = refined_scores(frm, scores, names, refine, mmcl_settings(config)["text_combine"])
        refined_metrics = report_scores(refined, indices, test_set, config, runtime, work_dir, stems[1], log,
                                        pictures=True)
        metrics.update({f"refine_{key}": value for key, value in refined_metrics.items()})
    log.close()
    return metrics
