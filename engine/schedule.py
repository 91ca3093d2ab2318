"""Optimiser and learning-rate schedule of the CTR-GCN family: linear warm-up per epoch, then step decay per
epoch (CTR-GCN) or a cosine moved every iteration (HD-GCN)."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def learning_rate(epoch: int, config: dict[str, Any], batch: int = 0, batches: int = 1) -> float:
    """The learning rate of batch ``batch`` (0-based) of the ``batches`` of (0-based) ``epoch``, as the public
    code sets it before each optimiser step: ``base_lr·(epoch+1)/warm_up_epoch`` through each warm-up epoch,
    then ``base_lr·lr_decay_rate^(number of steps ≤ epoch)`` (CTR-GCN), or with ``lr_scheduler: cosine``
    (HD-GCN) ``low + (base_lr − low)·(1 + cos(π·t/T))/2`` with ``low = base_lr·lr_ratio``,
    ``t = batches·(epoch − warm_up_epoch) + batch`` and ``T = batches·(num_epoch − warm_up_epoch)``: a cosine
    that moves every iteration.
    """
    base = config["base_lr"]
    warm_up = config["warm_up_epoch"]
    if epoch < warm_up:
        return base * (epoch + 1) / warm_up
    if config.get("lr_scheduler", "step") == "cosine":
        low = base * config["lr_ratio"]
        done, total = batches * (epoch - warm_up) + batch, batches * (config["num_epoch"] - warm_up)
        return low + 0.5 * (base - low) * (1 + math.cos((done / total) * math.pi))
    passed = sum(epoch >= step for step in config["step"])
    return base * config["lr_decay_rate"] ** passed


def build_optimizer(parameters: list[nn.Parameter], config: dict[str, Any]) -> torch.optim.Optimizer:
    """SGD (momentum 0.9, optional Nesterov), Adam or AdamW with the config's learning rate and weight decay.

    Adam's step counts stay on the parameters' GPU (``capturable``), where a step skipped on the device can
    undo them (engine/guards.py); on the CPU they are on the CPU anyway.
    """
    name, lr, decay = config["optimizer"], config["base_lr"], config["weight_decay"]
    if name == "SGD":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=bool(config["nesterov"]), weight_decay=decay)
    kind = torch.optim.Adam if name == "Adam" else torch.optim.AdamW
    return kind(parameters, lr=lr, weight_decay=decay, capturable=any(p.is_cuda for p in parameters))


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a saved optimizer state but keep this optimizer's implementation settings (``capturable``,
    ``foreach``, ``fused``): loading would otherwise bring back those of the run that saved it (a CPU run's
    Adam resumed on a GPU would count its steps on the CPU)."""
    implementation = {key: value for key, value in optimizer.param_groups[0].items()
                      if key in ("capturable", "foreach", "fused")}
    groups = [{**group, **implementation} for group in state["param_groups"]]
    optimizer.load_state_dict({**state, "param_groups": groups})


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set ``lr`` on every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
