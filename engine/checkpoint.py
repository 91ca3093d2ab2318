"""Checkpoints: full training state written atomically, and weight loading that accepts public files.

A training checkpoint is a plain dict (``format``, ``model``, ``optimizer``, ``scaler``, ``epoch``, ``batch``,
``step``, ``best``, ``rng``, ``config``, ``loader``, ``skipped_nonfinite``) saved with ``torch.save`` and read
back with ``weights_only=True``. ``batch`` > 0 marks a run stopped inside an epoch; ``loader`` (batch size and
number of processes) says where that position holds; ``rng`` lists the generators of every rank then.
"""
from __future__ import annotations

import os
import random
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.errors import InputError
from engine.fileio import atomic_path
from model.public_mmcl import backbone_state, is_public_mmcl, map_public_state

CHECKPOINT_FORMAT = "mmcl-checkpoint/1"


def rng_state() -> dict[str, Any]:
    """The global generators' states as plain data (tensors, lists, ints)."""
    python_state = random.getstate()
    np_name, np_keys, np_pos, np_gauss, np_cached = np.random.get_state()
    state = {
        "python": list(python_state[1]),
        "python_version": python_state[0],
        "python_gauss": python_state[2],
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": np_pos,
                  "has_gauss": np_gauss, "cached_gaussian": np_cached},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> str | None:
    """Restore what :func:`rng_state` returned. CUDA generators are restored device by device as far as this
    process sees as many GPUs as the saved state holds; a note says so when the numbers differ (else None)."""
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["name"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    saved = list(state.get("cuda", []))
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for device, cuda_state in enumerate(saved[:visible]):
        torch.cuda.set_rng_state(cuda_state, device)
    if len(saved) == visible or not saved:
        return None
    return (f"random generators: the checkpoint holds the states of {len(saved)} CUDA device(s), this process sees "
            f"{visible}: {min(len(saved), visible)} restored, the others as seeded")


def resume_position(state: dict[str, Any], loader: dict[str, int]) -> tuple[int, str | None]:
    """The batch of its epoch that a checkpoint resumes at, and a note when that is not where it stopped.

    A run stopped inside an epoch continues after its last batch if it loads the same batches again
    (``loader``: this run's per-process ``batch_size`` and ``world_size``, as the checkpoint records them; a
    checkpoint older than that record is compared on its config's ``batch_size``). Otherwise the position does
    not carry over and the epoch restarts from its first batch, which the note says.
    """
    batch = state.get("batch", 0)
    saved = state.get("loader") or {"batch_size": state["config"]["batch_size"], "world_size": loader["world_size"]}
    if not batch or saved == loader:
        return batch, None
    return 0, (f"the checkpoint stopped after batch {batch} of epoch {state['epoch'] + 1}, loading batches of "
               f"{saved['batch_size']} on {saved['world_size']} process(es); this run loads batches of "
               f"{loader['batch_size']} on {loader['world_size']}: the epoch restarts from its first batch "
               f"(its first {batch} batches trained on again)")


def load_precision_state(scaler: torch.amp.GradScaler, state: dict[str, Any], amp: bool | str) -> str | None:
    """Load a checkpoint's float16 loss scale into ``scaler`` (enabled for this run's float16, ``amp`` being its
    config value); a note when the precision changes: a float16 run resumed from another precision starts a
    fresh loss scale, and another precision leaves the checkpoint's unused."""
    saved = state.get("scaler") or {}
    if scaler.is_enabled() and saved:
        scaler.load_state_dict(saved)
    changes = []
    saved_amp = state.get("config", {}).get("amp", False)
    if saved_amp != amp:
        changes.append(f"the checkpoint was saved with amp {str(saved_amp).lower()}, this run has {str(amp).lower()}")
    if scaler.is_enabled() and not saved:
        changes.append(f"a fresh float16 loss scale starts at {scaler.get_scale():g}")
    elif saved and not scaler.is_enabled():
        changes.append("the checkpoint's float16 loss scale is not used")
    return "amp: " + "; ".join(changes) if changes else None


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DataParallel / DistributedDataParallel wrappers."""
    return model.module if hasattr(model, "module") else model


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save ``state`` (plus the format tag) atomically: a killed run never leaves a truncated checkpoint."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)


def save_weights(path: str | os.PathLike, model: nn.Module) -> None:
    """Save the bare model state dict on the CPU, as the public CTR-GCN ``runs-*.pt`` files are."""
    weights = OrderedDict((k, v.detach().cpu()) for k, v in unwrap(model).state_dict().items())
    with atomic_path(path) as tmp:
        torch.save(weights, tmp)


def read_torch_file(path: str | os.PathLike) -> Any:
    """``torch.load(weights_only=True)`` on the CPU, with failures reported as one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises several types for corrupt or unsafe files
        reason = " ".join(str(err).split())[:200]
        raise InputError(f"{path}: not a loadable weights-only torch checkpoint ({reason})") from None


def bare_state_dict(content: Any) -> dict[str, torch.Tensor] | None:
    """``content`` as a bare state dict (every value a tensor), DataParallel's ``module.`` prefixes removed;
    ``None`` if it is not one."""
    if not isinstance(content, dict) or not all(isinstance(v, torch.Tensor) for v in content.values()):
        return None
    return {key.removeprefix("module."): value for key, value in content.items()}


def extract_state_dict(content: Any, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The backbone weights inside a file's content: ours (the ``backbone.`` entries of its ``model``, the
    training objective's state), or a bare (public) state dict."""
    if isinstance(content, dict) and content.get("format") == CHECKPOINT_FORMAT:
        prefix = "backbone."
        content = {k[len(prefix):]: v for k, v in content["model"].items() if k.startswith(prefix)}
    elif isinstance(content, dict) and isinstance(content.get("state_dict"), dict):
        content = content["state_dict"]
    state = bare_state_dict(content)
    if state is None:
        raise InputError(f"{path}: holds no model state dict")
    return backbone_state(state) if is_public_mmcl(state) else state


def load_state(model: nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike,
               ignore_prefixes: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Load ``state`` (read from ``path``) into ``model`` strictly, after dropping ``ignore_prefixes``; return the
    dropped keys. Any mismatch is an ``InputError`` naming the file and the first missing, unexpected or
    mis-shaped key."""
    dropped = [key for key in state if any(key.startswith(prefix) for prefix in ignore_prefixes)]
    for key in dropped:
        del state[key]
    check_state_dict(unwrap(model), state, path, ignore_prefixes)
    unwrap(model).load_state_dict(state, strict=not ignore_prefixes)
    return dropped


def check_state_dict(
    model: nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike, ignore_prefixes=()
) -> None:
    """Raise an ``InputError`` if ``state`` does not fit ``model`` key for key and shape for shape."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not any(k.startswith(p) for p in ignore_prefixes)]
    unexpected = [k for k in state if k not in expected]
    mis_shaped = [k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), e.g. {missing[0]!r}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[0]!r}")
    if mis_shaped:
        key = mis_shaped[0]
        problems.append(f"{len(mis_shaped)} shape mismatch(es), e.g. {key!r} {tuple(state[key].shape)} "
                        f"vs {tuple(expected[key].shape)}")
    if problems:
        raise InputError(f"{path}: does not fit the configured {type(model).__name__}: " + "; ".join(problems))


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read one of our training checkpoints (for ``--resume``)."""
    content = read_torch_file(path)
    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not an mmcl training checkpoint (use --weights for bare weights)")
    return content


def initialise_from_weights(objective: nn.Module, path: str | os.PathLike, ignore_prefixes: list[str]) -> str:
    """Start training from ``path``: a public MMCL checkpoint fills every part it has a counterpart for,
    anything else loads into the backbone strictly. Returns a log line saying what was loaded."""
    content = read_torch_file(path)
    state = bare_state_dict(content)
    if state is not None and is_public_mmcl(state):
        mapped, report = map_public_state(state, unwrap(objective).state_dict())
        unwrap(objective).load_state_dict(mapped, strict=False)
        return (f"initialised from public MMCL checkpoint {path}: {len(report['mapped'])} keys mapped, "
                f"{len(report['ignored'])} ignored (e.g. {report['ignored'][:3]}), "
                f"{len(report['missing'])} of ours left as initialised (e.g. {report['missing'][:3]})")
    dropped = load_state(unwrap(objective).backbone, extract_state_dict(content, path), path, ignore_prefixes)
    return f"initialised the backbone from {path}" + (f" (ignored {len(dropped)} keys)" if dropped else "")
