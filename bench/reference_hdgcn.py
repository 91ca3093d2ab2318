"""Straightforward HD-GCN: one module per hierarchy layer, subset and TCN branch, as the public code is written.

The baseline of ``bench.bench_hdgcn`` and the oracle of the equivalence tests: same maths and the same
parameter and buffer names as ``model.hdgcn.Model``, without any fusion. The units and TCNs are those of
``bench.reference_ctrgcn`` with HD-GCN's temporal convolution (``model.hdgcn.BiasedConvBN``).
"""
from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.reference_ctrgcn import TCNGCNUnit
from model.hdgcn import BiasedConvBN, resolve_hierarchy
from model.init import bn_init, classifier_init, init_convs_and_bns


def conv_bn(in_channels: int, out_channels: int, relu: bool = False) -> nn.Sequential:
    """1x1 convolution, BatchNorm and optionally ReLU."""
    layers = [nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class EdgeConv(nn.Module):
    """Dynamic k-nearest-neighbour edge convolution over the nodes of (N, C, V) (or the temporal mean of 4-D x)."""

    def __init__(self, channels: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.conv = nn.Sequential(nn.Conv2d(2 * channels, channels, 1, bias=False), nn.BatchNorm2d(channels),
                                  nn.LeakyReLU(0.2, inplace=True))
        init_convs_and_bns(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[2] if x.dim() == 4 else None
        if frames is not None:
            x = x.mean(2)
        squares = (x ** 2).sum(1, keepdim=True)
        distance = -squares - (-2 * torch.matmul(x.transpose(1, 2), x)) - squares.transpose(1, 2)  # (N, V, V)
        neighbours = distance.topk(self.k, dim=-1).indices  # (N, V, k)
        n = x.shape[0]
        gathered = torch.stack([x[i][:, neighbours[i]] for i in range(n)])  # (N, C, V, k)
        centre = x.unsqueeze(-1).expand(-1, -1, -1, self.k)
        y = self.conv(torch.cat((gathered - centre, centre), dim=1)).max(-1).values
        return y if frames is None else y.unsqueeze(2).expand(-1, -1, frames, -1)


class AttentionOverLayers(nn.Module):
    """HD-GCN's attention-guided hierarchy aggregation (AHA): a weight per channel and hierarchy layer."""

    def __init__(self, channels: int, groups: tuple[tuple[int, ...], ...]) -> None:
        super().__init__()
        self.layers = [list(inner) + list(outer) for inner, outer in pairwise(groups)]
        inter = channels // 4
        self.conv_down = conv_bn(channels, inter, relu=True)
        self.edge_conv = EdgeConv(inter, k=3)
        self.aggregate = nn.Conv1d(inter, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, num_layers, _, _ = x.shape
        summary = self.conv_down(x.max(3).values)  # (N, C/4, L, V)
        sampled = torch.stack([summary[:, :, i, joints].mean(-1) for i, joints in enumerate(self.layers)], dim=2)
        weight = torch.sigmoid(self.aggregate(self.edge_conv(sampled))).view(n, c, num_layers, 1, 1)
        return (x * weight).sum(2)


class HDGraphConv(nn.Module):
    """Per layer: a 1x1 down-projection, three graph subsets each followed by 1x1 conv + BN, and an EdgeConv."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: np.ndarray,
                 groups: tuple[tuple[int, ...], ...], attention: bool) -> None:
        super().__init__()
        num_layers, num_subsets = adjacency.shape[:2]
        inter = out_channels // (num_subsets + 1)
        self.PA = nn.Parameter(torch.from_numpy(adjacency.astype(np.float32)))
        self.conv_down = nn.ModuleList(conv_bn(in_channels, inter, relu=True) for _ in range(num_layers))
        self.conv = nn.ModuleList(
            nn.ModuleList([*(conv_bn(inter, inter) for _ in range(num_subsets)), EdgeConv(inter, k=5)])
            for _ in range(num_layers)
        )
        self.conv_d = self.conv[-1]
        self.aha = AttentionOverLayers(out_channels, groups) if attention else None
        self.down = conv_bn(in_channels, out_channels) if in_channels != out_channels else nn.Identity()
        self.bn = nn.BatchNorm2d(out_channels)
        init_convs_and_bns(self)
        bn_init(self.bn, 1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = []
        for i, (down, convs) in enumerate(zip(self.conv_down, self.conv)):
            x_down = down(x)
            parts = [conv(torch.einsum("nctu,vu->nctv", x_down, self.PA[i, j])) for j, conv in enumerate(convs[:-1])]
            layers.append(torch.cat([*parts, convs[-1](x_down)], dim=1))
        out = torch.stack(layers, dim=2)
        out = self.aha(out) if self.aha is not None else out.sum(2)
        return torch.relu(self.bn(out) + self.down(x))


class Model(nn.Module):
    """Reference HD-GCN with the constructor of ``model.hdgcn.Model``."""

    def __init__(
        self, num_class: int = 60, num_point: int = 25, num_person: int = 2,
        graph: str | Any = "graph.ntu_rgb_d_hierarchy.Graph", graph_args: Mapping[str, Any] | None = None,
        in_channels: int = 3, drop_out: float = 0.0, adaptive: bool = True, base_channel: int = 64,
    ) -> None:
        super().__init__()
        hierarchy = resolve_hierarchy(graph, graph_args)
        adjacency, groups = hierarchy.A, hierarchy.groups
        self.data_bn = nn.BatchNorm1d(num_person * in_channels * num_point)
        b = base_channel
        widths = [in_channels, b, b, b, b, 2 * b, 2 * b, 2 * b, 4 * b, 4 * b, 4 * b]
        strides = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)
        for i, stride in enumerate(strides):
            gcn = HDGraphConv(widths[i], widths[i + 1], adjacency, groups, attention=i > 0)
            self.add_module(f"l{i + 1}", TCNGCNUnit(gcn, widths[i], widths[i + 1], stride, residual=i > 0,
                                                    temporal=BiasedConvBN))
        self.fc = nn.Linear(4 * b, num_class)
        classifier_init(self.fc)
        bn_init(self.data_bn, 1.0)
        self.drop_out = nn.Dropout(drop_out) if drop_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t))
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for i in range(1, 11):
            x = getattr(self, f"l{i}")(x)
        x = x.view(n, m, x.shape[1], -1).mean(3).mean(1)
        return self.fc(self.drop_out(x))
