"""Straightforward TD-GCN: one module per adjacency subset, ``einsum`` aggregations, as the public code is written.

The baseline of ``bench.bench_backbone --models tdgcn`` and an oracle of the equivalence tests: same maths and
the same parameter names as ``model.tdgcn.Model`` (without the unused second embedding), without any fusion.
The temporal convolutions and the network around the graph convolution are those of ``bench.reference_ctrgcn``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bench import reference_ctrgcn
from model.ctrgcn import rel_channels


class TDGC(nn.Module):
    """One subset: ``beta * einsum(conv4(tanh(x1_u - x1_v)) * alpha + A, x3) + gamma * einsum(a, x3)`` with the
    per-frame adjacency ``a[t, u, v] = tanh(mean_c x3[:, t, u] - mean_c x3[:, t, v])``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        rel = rel_channels(in_channels)
        self.conv1 = nn.Conv2d(in_channels, rel, kernel_size=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.conv4 = nn.Conv2d(rel, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor,
                gamma: torch.Tensor) -> torch.Tensor:
        x1, x3 = self.conv1(x).mean(-2), self.conv3(x)
        refined = self.conv4(torch.tanh(x1.unsqueeze(-1) - x1.unsqueeze(-2))) * alpha + adjacency
        channel_topology = torch.einsum("ncuv,nctv->nctu", refined, x3)
        frame_mean = x3.mean(1)
        frame_topology = torch.tanh(frame_mean.unsqueeze(-1) - frame_mean.unsqueeze(-2))
        temporal = torch.einsum("ntuv,ntcv->nctu", frame_topology, x3.permute(0, 2, 1, 3))
        return channel_topology * beta + temporal * gamma


class UnitTDGCN(reference_ctrgcn.UnitGCN):
    """Sum of the subsets' TDGC outputs, BN, residual, ReLU; ``beta`` and ``gamma`` shared by the subsets."""

    subset_conv = TDGC

    def __init__(self, in_channels: int, out_channels: int, adjacency: np.ndarray, adaptive: bool = True) -> None:
        super().__init__(in_channels, out_channels, adjacency, adaptive)
        self.beta = nn.Parameter(torch.tensor(0.5))
        self.gamma = nn.Parameter(torch.tensor(0.1))

    def subset(self, i: int, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        return self.convs[i](x, adjacency[i], self.alpha, self.beta, self.gamma)


class Model(reference_ctrgcn.Model):
    """Reference TD-GCN with the constructor of ``model.tdgcn.Model`` (``second_embedding`` off)."""

    graph_conv = UnitTDGCN
