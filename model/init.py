"""Weight initialisation of the CTR-GCN family (the scheme of the public CTR-GCN / TD-GCN code)."""
from __future__ import annotations

import math

from torch import nn


def conv_init(conv: nn.Conv2d) -> None:
    """Kaiming-normal weights (fan_out) and zero bias."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def bn_init(bn: nn.modules.batchnorm._BatchNorm, scale: float) -> None:
    """Constant scale ``scale`` and zero shift."""
    nn.init.constant_(bn.weight, scale)
    nn.init.zeros_(bn.bias)


def init_convs_and_bns(module: nn.Module, bn_scale: float = 1.0) -> None:
    """Every Conv2d of ``module`` by :func:`conv_init`, every BatchNorm2d to ``bn_scale``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            conv_init(m)
        elif isinstance(m, nn.BatchNorm2d):
            bn_init(m, bn_scale)


def init_temporal(module: nn.Module) -> None:
    """Multi-scale TCN scheme: convs by :func:`conv_init`, BatchNorm scales drawn from N(1, 0.02), zero shifts."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            conv_init(m)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def classifier_init(fc: nn.Linear) -> None:
    """Classifier weights ~ N(0, sqrt(2 / K)) for K classes; the bias keeps PyTorch's default."""
    nn.init.normal_(fc.weight, 0.0, math.sqrt(2.0 / fc.out_features))
