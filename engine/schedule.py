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
