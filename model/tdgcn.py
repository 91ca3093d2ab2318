"""TD-GCN backbone (Liu et al., temporal decoupling GCN), state-dict compatible with the public release.

It is CTR-GCN with another graph convolution. Per subset k, one embedding gives the channel-wise topology
``Q_k = conv4(tanh(x1_u - x1_v)) * alpha + A_k``; the features ``x3 = conv3_k(x)`` also give a
temporal-dependent adjacency per frame ``a[t,u,v] = tanh(mean_c x3[:,t,u] - mean_c x3[:,t,v])``; the output
is ``beta * sum_v Q_k x3 + gamma * sum_v a x3`` with learnable scalars beta (0.5) and gamma (0.1).

The public ``liujf69/TD-GCN-Gesture`` code keeps a second embedding convolution ``conv2`` commented out as
redundant; its released action-recognition (NTU) weights contain it, so ``second_embedding=True`` adds
``conv2`` to every subset. It is never used in the forward pass (as in the public code), so it is frozen.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from model.ctrgcn import CTRGraphConv, GCNBackbone, Pointwise
from model.init import conv_init
from model.precision import full_precision, wide


class TDGraphConv(CTRGraphConv):
    """Temporal decoupling graph convolution over all subsets, then BN, residual and ReLU.

    ``second_embedding`` adds the frozen, unused ``conv2`` of the released NTU checkpoints to every subset.
    """

    uses_second_embedding = False

    def __init__(
        self, in_channels: int, out_channels: int, adjacency: np.ndarray, adaptive: bool = True,
        second_embedding: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, adjacency, adaptive)
        self.beta = nn.Parameter(torch.tensor(0.5))
        self.gamma = nn.Parameter(torch.tensor(0.1))
        if second_embedding:
            for sub in self.convs:
                sub.conv2 = Pointwise(in_channels, sub.conv1.out_channels).requires_grad_(False)
                conv_init(sub.conv2)

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        """``beta`` times the refined-topology aggregation plus ``gamma`` times the per-frame one, (N, C, T, V);
        in float32 (or wider) under autocast, as the refined topology.

        The per-frame adjacency is built directly in the (N, T, U, K, V) layout its batched product takes, with
        ``gamma`` folded into it (it is smaller than the features for C > V); only the features are reordered,
        to (N, T, C, K, V), and the product is added into the refined aggregation in place.
        """
        features = wide(self.features(x))
        refined = self.apply_topology(features, self.topology(x, scale=self.beta))
        n, c, k, t, v = features.shape
        with full_precision(features):
            by_source = features.mean(1).transpose(1, 2).contiguous()  # (N, T, K, V): the channel mean per frame
            by_target = by_source.transpose(2, 3).contiguous()  # (N, T, U, K): the same, laid out for the target
            # the operands' layouts make the broadcast difference contiguous in (N, T, U, K, V)
            temporal = torch.tanh(by_target.unsqueeze(-1) - by_source.unsqueeze(2)) * self.gamma
            by_frame = features.permute(0, 3, 1, 2, 4).reshape(n * t, c, k * v)
            per_frame = torch.bmm(by_frame, temporal.reshape(n * t, v, k * v).transpose(1, 2))  # (N*T, C, U)
            return refined.add_(per_frame.view(n, t, c, v).transpose(1, 2))


class Model(GCNBackbone):
    """TD-GCN with the public ``model.tdgcn.Model`` constructor plus ``base_channel`` and ``second_embedding``."""

    def __init__(
        self, num_class: int = 60, num_point: int = 25, num_person: int = 2,
        graph: str | object = "graph.ntu_rgb_d.Graph", graph_args: Mapping[str, Any] | None = None,
        in_channels: int = 3, drop_out: float = 0.0, adaptive: bool = True, base_channel: int = 64,
        second_embedding: bool = False,
    ) -> None:
        super().__init__(partial(TDGraphConv, second_embedding=second_embedding), num_class, num_point, num_person,
                         graph, graph_args, in_channels, drop_out, adaptive, base_channel)
