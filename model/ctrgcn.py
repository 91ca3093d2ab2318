"""CTR-GCN backbone (Chen et al., ICCV 2021), state-dict compatible with the public release.

Parameter and buffer names and shapes are those of the public ``model/ctrgcn.py``, so its checkpoints load
with ``strict=True``; the maths is the same. The forward pass is reorganised for CPU speed (measured by
``bench.bench_backbone``): the per-subset 1x1 convolutions run as one over concatenated weights, the temporal
means are taken before the embedding convolutions, ``alpha`` scales conv4's weights instead of its output,
the subsets are aggregated by accumulated batched matrix products without copying the features, and the
four entry convolutions of the multi-scale TCN run as one. On the CPU, 1x1 convolutions are batched matrix
products and the temporal max-pool runs channels-last; on CUDA they are cuDNN's (``model.kernels``).
The building blocks are shared with the TD-GCN and HD-GCN backbones (``model/tdgcn.py``, ``model/hdgcn.py``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import InputError
from graph.registry import build_graph
from model import kernels
from model.init import bn_init, classifier_init, init_convs_and_bns, init_temporal
from model.precision import full_precision, wide, wide_dtype

#: Builds the graph convolution of one unit from (in_channels, out_channels, adjacency (K, V, V), adaptive).
GraphConvFactory = Callable[[int, int, np.ndarray, bool], nn.Module]


def resolve_graph(graph: str | object, graph_args: Mapping[str, Any] | None = None, ndim: int = 3) -> np.ndarray:
    """The (K, V, V) float32 adjacency of ``graph``: a name of ``graph.registry.GRAPHS``, the dotted path of a
    user's graph class (built with ``graph_args``), or an object with an ``A``.

    ``ndim=4`` accepts the (L, K, V, V) adjacency of a hierarchical graph object instead.
    """
    if isinstance(graph, str):
        graph = build_graph(graph, graph_args)
    adjacency = np.asarray(getattr(graph, "A", None), dtype=np.float32)
    if adjacency.ndim != ndim or adjacency.shape[-1] != adjacency.shape[-2]:
        shape = "(K, V, V)" if ndim == 3 else "(L, K, V, V)"
        raise InputError(f"model_args.graph: {graph!r} has no {shape} adjacency 'A'")
    return adjacency


def rel_channels(in_channels: int) -> int:
    """Width of the topology embedding: 8 for 3 or 9 input channels (and any input narrower than 8), else C/8.

    The public code uses C // 8 for every other width, which is 0 (a crash) below 8 channels.
    """
    return 8 if in_channels in (3, 9) or in_channels < 8 else in_channels // 8


def cat_conv_params(convs: Sequence[nn.Conv2d]) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and biases of several convolutions stacked along the output channels (gradients flow back)."""
    return torch.cat([c.weight for c in convs]), torch.cat([c.bias for c in convs])


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """1x1 convolution of ``x`` (N, C, T, V) with ``weight`` (O, C, 1, 1).

    The fused kernels (``model.kernels``) run it as one batched matrix product over the weight expanded along
    N: on the CPU, forward and backward about twice as fast as oneDNN's convolution for these shapes. The
    library kernels call ``F.conv2d``.
    """
    if not kernels.fused(x):
        return F.conv2d(x, weight, bias)
    n, c, t, v = x.shape
    out = torch.baddbmm(bias.view(1, -1, 1), weight.flatten(1).expand(n, -1, -1), x.reshape(n, c, t * v))
    return out.view(n, -1, t, v)


class Pointwise(nn.Conv2d):
    """A 1x1 convolution with temporal stride, computed by :func:`pointwise` (same parameters as ``nn.Conv2d``)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1, stride=(stride, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not kernels.fused(x):
            return super().forward(x)
        return pointwise(x[:, :, :: self.stride[0]], self.weight, self.bias)


class TemporalMaxPool(nn.MaxPool2d):
    """Max pooling over 3 frames (temporal stride s). The fused kernels (``model.kernels``) run it in
    channels-last layout, where oneDNN is much faster; the library kernels in the input's own layout."""

    def __init__(self, stride: int = 1) -> None:
        super().__init__((3, 1), (stride, 1), (1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not kernels.fused(x):
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


class SubsetConvs(nn.Module):
    """Parameters of one adjacency subset: embeddings ``conv1`` (``conv2``), features ``conv3``, refinement ``conv4``.

    A container only: :class:`CTRGraphConv` runs the convolutions of all subsets together.
    """

    def __init__(self, in_channels: int, out_channels: int, second_embedding: bool = True) -> None:
        super().__init__()
        rel = rel_channels(in_channels)
        self.conv1 = Pointwise(in_channels, rel)
        if second_embedding:
            self.conv2 = Pointwise(in_channels, rel)
        self.conv3 = Pointwise(in_channels, out_channels)
        self.conv4 = Pointwise(rel, out_channels)


class CTRGraphConv(nn.Module):
    """Channel-wise topology refinement graph convolution over all subsets, then BN, residual and ReLU.

    Per subset k: ``Q_k = conv4(tanh(x1_u - x2_v)) * alpha + A_k`` with ``x1, x2`` the embeddings of the
    temporal mean of ``x``; output ``sum_k sum_v Q_k[n,c,u,v] * conv3_k(x)[n,c,t,v]``. Under autocast only
    ``conv3`` and ``down`` run in low precision: the refinement, the aggregation and BN compute in float32
    (``model.precision``). Subclasses with one embedding (pair (conv1, conv1), as TD-GCN) set
    ``uses_second_embedding = False``.
    """

    uses_second_embedding = True

    def __init__(self, in_channels: int, out_channels: int, adjacency: np.ndarray, adaptive: bool = True) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            SubsetConvs(in_channels, out_channels, self.uses_second_embedding) for _ in range(adjacency.shape[0])
        )
        if in_channels != out_channels:
            self.down = nn.Sequential(Pointwise(in_channels, out_channels), nn.BatchNorm2d(out_channels))
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

    @property
    def adjacency(self) -> torch.Tensor:
        """The (K, V, V) graph: the learnable ``PA`` or the fixed ``A``."""
        return self.PA if self.adaptive else self.A

    def embeddings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two topology embeddings of every subset, each (K, N, R, V), from the temporal mean of ``x``."""
        n, _, _, v = x.shape
        names = ("conv1", "conv2") if self.uses_second_embedding else ("conv1",)
        weight, bias = cat_conv_params([getattr(sub, name) for sub in self.convs for name in names])
        pooled = F.conv1d(x.mean(2, dtype=wide_dtype(x.dtype)), weight.flatten(1).unsqueeze(-1), bias)
        pooled = pooled.view(n, len(self.convs), len(names), -1, v).transpose(0, 1)
        return pooled[:, :, 0], pooled[:, :, -1]

    def topology(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Refined adjacency of each subset, TRANSPOSED: (N, C_out, V_source, V_target), times ``scale`` if given.

        Built transposed so that it is the contiguous right operand of the aggregation's matrix products.
        ``alpha`` (and ``scale``) multiply the few weights of ``conv4`` rather than its large output; the graph
        is added in place, and so is the bias with the fused kernels (faster than ``baddbmm``'s broadcast for
        these short products). Computed in float32 (or wider) under autocast.
        """
        with full_precision(x):
            first, second = self.embeddings(x)
            n, v = first.shape[1], first.shape[-1]
            relation = torch.tanh(first.unsqueeze(-2) - second.unsqueeze(-1)).flatten(-2)
            gain = self.alpha if scale is None else self.alpha * scale
            graph = self.adjacency.transpose(1, 2).flatten(1)
            if scale is not None:
                graph = graph * scale
            if kernels.fused(x):
                refined = [torch.bmm((sub.conv4.weight.flatten(1) * gain).expand(n, -1, -1), relation[i])
                           .add_((sub.conv4.bias * gain).unsqueeze(-1)) for i, sub in enumerate(self.convs)]
            else:
                refined = [F.conv1d(relation[i], sub.conv4.weight.squeeze(-1) * gain, sub.conv4.bias * gain)
                           for i, sub in enumerate(self.convs)]
            return [part.add_(graph[i]).view(n, -1, v, v) for i, part in enumerate(refined)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``conv3`` of every subset as one convolution, laid out (N, C_out, K, T, V).

        Channels are ordered (C_out, K) so that each subset's slice merges N and C_out into one batch axis.
        """
        n, _, t, v = x.shape
        k = len(self.convs)
        weight, bias = cat_conv_params([sub.conv3 for sub in self.convs])
        weight = weight.unflatten(0, (k, -1)).transpose(0, 1).flatten(0, 1)
        bias = bias.unflatten(0, (k, -1)).t().flatten()
        return pointwise(x, weight, bias).view(n, -1, k, t, v)

    @staticmethod
    def apply_topology(features: torch.Tensor, topology: Sequence[torch.Tensor]) -> torch.Tensor:
        """``sum_k sum_v features[n,c,k,t,v] * Q_k[n,c,u,v]`` as batched matrix products, (N, C_out, T, V).

        ``topology`` holds each ``Q_k`` transposed, as :meth:`topology` returns it. Computed in float32 (or
        wider) under autocast.
        """
        n, c, _, t, v = features.shape
        out = None
        with full_precision(features):
            for part, graph in zip(wide(features).unbind(2), topology):
                part, graph = part.flatten(0, 1), graph.flatten(0, 1)
                out = torch.bmm(part, graph) if out is None else out.baddbmm_(part, graph)
        return out.view(n, c, t, v)

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over subsets and source joints of the refined graphs applied to the features, (N, C_out, T, V)."""
        return self.apply_topology(self.features(x), self.topology(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu_(self.bn(self.aggregate(x)).add_(self.down(x)))


class ConvBN(nn.Module):
    """A (kernel x 1) temporal convolution followed by BatchNorm (``conv``, ``bn``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        if kernel_size == 1:
            self.conv = Pointwise(in_channels, out_channels, stride)
        else:
            pad = (kernel_size - 1) * dilation // 2
            self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1),
                                  dilation=(dilation, 1))
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class MultiScaleTemporalConv(nn.Module):
    """Multi-scale TCN: dilated-conv branches, a max-pool branch and a 1x1 branch, concatenated.

    Every branch opens with a 1x1 convolution of the same input; the four run as one convolution. ``temporal``
    builds the dilated convolutions (with BatchNorm) from (in, out, kernel_size, stride, dilation).
    """

    def __init__(self, channels: int, kernel_size: int = 5, stride: int = 1, dilations: Sequence[int] = (1, 2),
                 temporal: Callable[..., nn.Module] = ConvBN) -> None:
        super().__init__()
        width = channels // (len(dilations) + 2)
        self.stride = stride
        self.branches = nn.ModuleList(
            nn.Sequential(
                Pointwise(channels, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                temporal(width, width, kernel_size, stride, dilation),
            )
            for dilation in dilations
        )
        self.branches.append(nn.Sequential(
            Pointwise(channels, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            TemporalMaxPool(stride), nn.BatchNorm2d(width),
        ))
        self.branches.append(nn.Sequential(Pointwise(channels, width, stride), nn.BatchNorm2d(width)))
        init_temporal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = cat_conv_params([branch[0] for branch in self.branches])
        entries = pointwise(x, weight, bias).split(self.branches[0][0].out_channels, dim=1)
        outputs = []
        for branch, entry in zip(self.branches[:-1], entries):
            for layer in branch[1:]:
                entry = layer(entry)
            outputs.append(entry)
        outputs.append(self.branches[-1][1](entries[-1][:, :, :: self.stride]))
        return torch.cat(outputs, dim=1)


class Unit(nn.Module):
    """One GCN-TCN unit: ``ReLU(tcn1(gcn1(x)) + residual(x))``; ``temporal`` as in the multi-scale TCN."""

    def __init__(self, gcn: nn.Module, in_channels: int, out_channels: int, stride: int = 1,
                 residual: bool = True, temporal: Callable[..., nn.Module] = ConvBN) -> None:
        super().__init__()
        self.gcn1 = gcn
        self.tcn1 = MultiScaleTemporalConv(out_channels, stride=stride, temporal=temporal)
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = ConvBN(in_channels, out_channels, stride=stride)
            init_convs_and_bns(self.residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn1(self.gcn1(x))
        if self.residual is not None:
            y = y.add_(self.residual(x))
        return torch.relu_(y)


class GCNBackbone(nn.Module):
    """The ten-unit CTR-GCN trunk with data BN, person pooling and a linear classifier, for any graph conv.

    Input (N, C, T, V, M) or (N, T, V*C); ``forward`` gives logits (N, K), ``forward_features`` also the pooled
    feature ``F_g`` (N, 4 * base_channel) before dropout. ``first_graph_conv`` builds the first unit's graph
    convolution if it differs, ``temporal`` the TCNs' dilated convolutions; subclasses whose graphs are
    hierarchical set ``graph_ndim = 4``.
    """

    graph_ndim = 3

    def __init__(
        self, graph_conv: GraphConvFactory, num_class: int = 60, num_point: int = 25, num_person: int = 2,
        graph: str | object = "graph.ntu_rgb_d.Graph", graph_args: Mapping[str, Any] | None = None,
        in_channels: int = 3, drop_out: float = 0.0, adaptive: bool = True, base_channel: int = 64,
        first_graph_conv: GraphConvFactory | None = None, temporal: Callable[..., nn.Module] = ConvBN,
    ) -> None:
        super().__init__()
        adjacency = resolve_graph(graph, graph_args if graph_args is not None else {"labeling_mode": "spatial"},
                                  self.graph_ndim)
        if adjacency.shape[-1] != num_point:
            raise InputError(f"model_args.num_point={num_point} but the graph has {adjacency.shape[-1]} joints")
        if base_channel <= 0 or base_channel % 8:
            raise InputError(f"model_args.base_channel={base_channel} must be a positive multiple of 8")
        self.num_class = num_class
        self.num_point = num_point
        self.data_bn = nn.BatchNorm1d(num_person * in_channels * num_point)
        widths = [in_channels] + [base_channel] * 4 + [base_channel * 2] * 3 + [base_channel * 4] * 3
        strides = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)
        self.unit_names = tuple(f"l{i}" for i in range(1, 11))
        for i, (name, stride) in enumerate(zip(self.unit_names, strides)):
            c_in, c_out = widths[i], widths[i + 1]
            gcn = (first_graph_conv if i == 0 and first_graph_conv else graph_conv)(c_in, c_out, adjacency, adaptive)
            self.add_module(name, Unit(gcn, c_in, c_out, stride=stride, residual=i > 0, temporal=temporal))
        self.fc = nn.Linear(base_channel * 4, num_class)
        classifier_init(self.fc)
        bn_init(self.data_bn, 1.0)
        self.drop_out = nn.Dropout(drop_out) if drop_out else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, K) and the pooled feature ``F_g`` (N, 4 * base_channel) taken before dropout."""
        if x.dim() == 3:
            n, t, _ = x.shape
            x = x.reshape(n, t, self.num_point, -1).permute(0, 3, 1, 2).unsqueeze(-1)
        if x.dim() != 5:
            raise ValueError(f"expected input (N, C, T, V, M) or (N, T, V*C), got shape {tuple(x.shape)}")
        n, c, t, v, m = x.shape
        if m * v * c != self.data_bn.num_features:
            raise ValueError(f"input (N, C, T, V, M) = {tuple(x.shape)} does not match the model's "
                             f"C*V*M = {self.data_bn.num_features}")
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t))
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for name in self.unit_names:
            x = getattr(self, name)(x)
        features = wide(x).view(n, m, x.shape[1], -1).mean(3).mean(1)
        with full_precision(features):  # float32 logits under autocast: bf16 ones tie (8-bit mantissa)
            return self.fc(self.drop_out(features)), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


class Model(GCNBackbone):
    """CTR-GCN with the constructor of the public ``model.ctrgcn.Model`` (plus ``base_channel``)."""

    def __init__(
        self, num_class: int = 60, num_point: int = 25, num_person: int = 2,
        graph: str | object = "graph.ntu_rgb_d.Graph", graph_args: Mapping[str, Any] | None = None,
        in_channels: int = 3, drop_out: float = 0.0, adaptive: bool = True, base_channel: int = 64,
    ) -> None:
        super().__init__(CTRGraphConv, num_class, num_point, num_person, graph, graph_args, in_channels, drop_out,
                         adaptive, base_channel)
