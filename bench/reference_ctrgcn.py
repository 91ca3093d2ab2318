"""Straightforward CTR-GCN: one module per adjacency subset and per TCN branch, as the public code is written.

The baseline of ``bench.bench_backbone`` and the oracle of the equivalence tests: same maths and the same
parameter names as ``model.ctrgcn.Model``, without any fusion.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from model.ctrgcn import rel_channels, resolve_graph
from model.init import bn_init, classifier_init, init_convs_and_bns, init_temporal


class CTRGC(nn.Module):
    """Topology refinement of one subset: ``einsum(conv4(tanh(x1_u - x2_v)) * alpha + A, conv3(x))``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        rel = rel_channels(in_channels)
        self.conv1 = nn.Conv2d(in_channels, rel, kernel_size=1)
        self.conv2 = nn.Conv2d(in_channels, rel, kernel_size=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.conv4 = nn.Conv2d(rel, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        x1, x2, x3 = self.conv1(x).mean(-2), self.conv2(x).mean(-2), self.conv3(x)
        relation = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))
        refined = self.conv4(relation) * alpha + adjacency
        return torch.einsum("ncuv,nctv->nctu", refined, x3)


class UnitGCN(nn.Module):
    """Sum of the subsets' CTRGC outputs, BN, residual, ReLU."""

    subset_conv: type[nn.Module] = CTRGC

    def __init__(self, in_channels: int, out_channels: int, adjacency: np.ndarray, adaptive: bool = True) -> None:
        super().__init__()
        self.convs = nn.ModuleList(self.subset_conv(in_channels, out_channels) for _ in range(adjacency.shape[0]))
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        else:
            self.down = nn.Identity()
        graph = torch.from_numpy(np.asarray(adjacency, dtype=np.float32))
        self.adaptive = adaptive
        if adaptive:
            self.PA = nn.Parameter(graph)
        else:
            self.register_buffer("A", graph, persistent=False)
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(out_channels)
        init_convs_and_bns(self)
        bn_init(self.bn, 1e-6)

    def subset(self, i: int, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """The output of subset ``i``."""
        return self.convs[i](x, adjacency[i], self.alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        adjacency = self.PA if self.adaptive else self.A
        y = sum(self.subset(i, x, adjacency) for i in range(len(self.convs)))
        return torch.relu_(self.bn(y) + self.down(x))


class TemporalConv(nn.Module):
    """(kernel x 1) convolution and BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        pad = (kernel_size - 1) * dilation // 2
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1),
                              dilation=(dilation, 1))
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class MultiScaleTCN(nn.Module):
    """Two dilated branches, a max-pool branch and a 1x1 branch, each run on its own and concatenated.

    ``temporal`` builds the dilated convolutions from (in, out, kernel_size, stride, dilation).
    """

    def __init__(self, channels: int, kernel_size: int = 5, stride: int = 1,
                 temporal: Callable[..., nn.Module] = TemporalConv) -> None:
        super().__init__()
        width = channels // 4
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, width, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                          temporal(width, width, kernel_size, stride, dilation))
            for dilation in (1, 2)
        )
        self.branches.append(nn.Sequential(nn.Conv2d(channels, width, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                                           nn.MaxPool2d((3, 1), (stride, 1), (1, 0)), nn.BatchNorm2d(width)))
        self.branches.append(nn.Sequential(nn.Conv2d(channels, width, 1, stride=(stride, 1)), nn.BatchNorm2d(width)))
        init_temporal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class TCNGCNUnit(nn.Module):
    """``ReLU(tcn1(gcn1(x)) + residual(x))`` around the graph convolution ``gcn``."""

    def __init__(self, gcn: nn.Module, in_channels: int, out_channels: int, stride: int = 1,
                 residual: bool = True, temporal: Callable[..., nn.Module] = TemporalConv) -> None:
        super().__init__()
        self.gcn1 = gcn
        self.tcn1 = MultiScaleTCN(out_channels, stride=stride, temporal=temporal)
        self.has_residual = residual
        if residual and (in_channels != out_channels or stride != 1):
            self.residual = TemporalConv(in_channels, out_channels, stride=stride)
            init_convs_and_bns(self.residual)
        else:
            self.residual = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn1(self.gcn1(x))
        return torch.relu_(y + self.residual(x)) if self.has_residual else torch.relu_(y)


class Model(nn.Module):
    """Reference CTR-GCN with the constructor of ``model.ctrgcn.Model``."""

    graph_conv: type[nn.Module] = UnitGCN

    def __init__(
        self, num_class: int = 60, num_point: int = 25, num_person: int = 2,
        graph: str | Any = "graph.ntu_rgb_d.Graph", graph_args: Mapping[str, Any] | None = None,
        in_channels: int = 3, drop_out: float = 0.0, adaptive: bool = True, base_channel: int = 64,
    ) -> None:
        super().__init__()
        adjacency = resolve_graph(graph, graph_args if graph_args is not None else {"labeling_mode": "spatial"})
        self.num_point = num_point
        self.data_bn = nn.BatchNorm1d(num_person * in_channels * num_point)
        b = base_channel
        widths = [in_channels, b, b, b, b, 2 * b, 2 * b, 2 * b, 4 * b, 4 * b, 4 * b]
        for i, stride in enumerate((1, 1, 1, 1, 2, 1, 1, 2, 1, 1)):
            gcn = self.graph_conv(widths[i], widths[i + 1], adjacency, adaptive)
            self.add_module(f"l{i + 1}", TCNGCNUnit(gcn, widths[i], widths[i + 1], stride, residual=i > 0))
        self.fc = nn.Linear(4 * b, num_class)
        classifier_init(self.fc)
        bn_init(self.data_bn, 1.0)
        self.drop_out = nn.Dropout(drop_out) if drop_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            n, t, _ = x.shape
            x = x.view(n, t, self.num_point, -1).permute(0, 3, 1, 2).contiguous().unsqueeze(-1)
        n, c, t, v, m = x.shape
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).contiguous().view(n, m * v * c, t))
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
        for i in range(1, 11):
            x = getattr(self, f"l{i}")(x)
        x = x.view(n, m, x.shape[1], -1).mean(3).mean(1)
        return self.fc(self.drop_out(x))
