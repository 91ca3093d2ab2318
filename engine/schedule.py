"""Optimiser and learning-rate schedule of the CTR-GCN family: linear warm-up, then step or cosine decay per epoch."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def learning_rate(epoch: int, config: dict[str, Any]) -> float:
    """The learning rate of (0-based) ``epoch``: ``base_lr·(epoch+1)/warm_up_epoch`` while warming up,
    then ``base_lr·lr_decay_rate^(number of steps ≤ epoch)``, or with ``lr_scheduler: cosine`` (HD-GCN's
    recipe) a cosine from ``base_lr`` down to ``base_lr·lr_ratio`` at ``num_epoch``.

    The public HD-GCN code moves the cosine every iteration; here it moves every epoch (the value at the
    epoch's first iteration), as the rest of the schedule does.
    """
    base = config["base_lr"]
    warm_up = config["warm_up_epoch"]
    if epoch < warm_up:
        return base * (epoch + 1) / warm_up
    if config.get("lr_scheduler", "step") == "cosine":
        low = base * config["lr_ratio"]
        return low + 0.5 * (base - low) * (1 + math.cos(math.pi * (epoch - warm_up) / (config["num_epoch"] - warm_up)))
    passed = sum(epoch >= step for step in config["step"])
    return base * config["lr_decay_rate"] ** passed


def build_optimizer(parameters: list[nn.Parameter], config: dict[str, Any]) -> torch.optim.Optimizer:
    """SGD (momentum 0.9, optional Nesterov), Adam or AdamW with the config's learning rate and weight decay."""
    name, lr, decay = config["optimizer"], config["base_lr"], config["weight_decay"]
    if name == "SGD":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=bool(config["nesterov"]), weight_decay=decay)
    if name == "Adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=decay)
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=decay)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set ``lr`` on every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
