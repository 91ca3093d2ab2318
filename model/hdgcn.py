"""HD-GCN backbone (Lee et al., ICCV 2023), state-dict compatible with the public ``model/HDGCN.py``.

The trunk is CTR-GCN's (ten units, multi-scale TCN) with a hierarchically decomposed graph convolution: per
hierarchy layer ``l`` (neighbouring joint groups, see ``graph/hierarchy.py``) a 1x1 down-projection to
C/4 channels, three graph subsets each followed by a 1x1 conv + BN, and a k-NN EdgeConv (k=5) on the
temporal mean; the layers are summed (first unit) or weighted per channel by the attention-guided hierarchy
aggregation (AHA). Parameter and buffer names and shapes are the public ones (``gcn1.conv_d`` is the public
alias of the last layer's modules), so public checkpoints load with ``strict=True``.

The forward pass is reorganised for speed (``bench.bench_hdgcn``), with the same maths: all layers'
down-projections run as one convolution and their BatchNorms as one call; the subset convolutions are
applied before the graph products (they commute), batched over layers; the EdgeConv output is constant over
time, so it is kept (N, C, V) and only broadcast at the end; and the k-NN EdgeConvs of all layers run
together. A 1x1 convolution's bias before a training-mode BatchNorm cancels, so it is never added to the large
activations (only to the running means); in eval mode those BatchNorms are folded into the convolutions,
and the subset branches' offsets are added to the per-layer maxima and weighted sums only. The attention's
per-layer maxima and the layer-major copy for its weighted sum share one backward pass. Nothing is tied
to a device: on the CPU the 1x1 convolutions are batched matrix products, elsewhere cuDNN's
(``model.kernels``). Under autocast the k-nearest-neighbour inner products and the attention compute in float32
(``model.precision``): they work on temporal means and maxima, so this costs little, and low-precision
distances would pick other neighbours on near-ties.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from itertools import pairwise
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from engine.errors import InputError
from engine.plugins import resolve
from graph import ntu_rgb_d_hierarchy, ucla_hierarchy
from graph.hierarchy import Groups, HierarchicalGraph
from model import kernels
from model.ctrgcn import GCNBackbone, cat_conv_params, pointwise
from model.init import bn_init, init_convs_and_bns
from model.precision import full_precision, wide

#: Hierarchical graphs accepted by name (the dotted names of the public configs, and our short names).
HIERARCHIES: dict[str, type[HierarchicalGraph]] = {
    "graph.ntu_rgb_d_hierarchy.Graph": ntu_rgb_d_hierarchy.Graph,
    "graph.ucla_hierarchy.Graph": ucla_hierarchy.Graph,
    "ntu_rgb_d_hierarchy": ntu_rgb_d_hierarchy.Graph,
    "ucla_hierarchy": ucla_hierarchy.Graph,
}


def resolve_hierarchy(graph: str | HierarchicalGraph, graph_args: Mapping[str, Any] | None = None) -> HierarchicalGraph:
    """The hierarchical graph named ``graph`` (a key of :data:`HIERARCHIES`, or the dotted path of a user's
    :class:`HierarchicalGraph`) built with ``graph_args``, or ``graph`` itself."""
    if not isinstance(graph, str):
        return graph
    cls = resolve(graph, HIERARCHIES, "model_args.graph")
    if not (isinstance(cls, type) and issubclass(cls, HierarchicalGraph)):
        raise InputError(f"model_args.graph: {graph!r} is not a hierarchical graph (HD-GCN needs one of "
                         f"{', '.join(HIERARCHIES)}, or a subclass of graph.hierarchy.HierarchicalGraph)")
    try:
        return cls(**dict(graph_args or {}))
    except (TypeError, ValueError) as error:
        raise InputError(f"model_args.graph_args {dict(graph_args or {})!r}: {error}") from None


def conv_bn(in_channels: int, out_channels: int, relu: bool = False) -> nn.Sequential:
    """1x1 convolution and BatchNorm (``0``, ``1``), then ReLU if asked."""
    layers = [nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def norm_tensors(norms: Sequence[nn.BatchNorm2d]) -> tuple[torch.Tensor, ...]:
    """Weights, biases, running means and running variances of ``norms``, each concatenated in order."""
    return tuple(torch.cat([getattr(n, name) for n in norms]) for name in ("weight", "bias", "running_mean", "running_var"))


def batch_norm(x: torch.Tensor, norms: Sequence[nn.BatchNorm2d], shift: torch.Tensor | None = None) -> torch.Tensor:
    """BatchNorm of ``x + shift`` (``shift``: a per-channel constant) whose channels are those of ``norms`` in order.

    Equal to applying each norm to its slice of channels, running statistics included (they are written back).
    In training mode the batch mean cancels ``shift``: it is not added to ``x``, only to the running means, and
    it keeps its gradient, exactly zero (the public model's is zero up to rounding).
    """
    first = norms[0]
    weight, bias, mean, var = norm_tensors(norms)
    if shift is not None:
        bias = bias + shift * (0.0 if first.training else weight * torch.rsqrt(var + first.eps))
    if not first.training:
        return F.batch_norm(x, mean, var, weight, bias, False, 0.0, first.eps)
    for norm in norms:
        norm.num_batches_tracked.add_(1)
    momentum = first.momentum if first.momentum is not None else 1.0 / float(first.num_batches_tracked)
    out = F.batch_norm(x, mean, var, weight, bias, True, momentum, first.eps)
    sizes = [n.num_features for n in norms]
    with torch.no_grad():
        if shift is not None:
            mean = mean + momentum * shift  # not in place: the backward reads the running mean it was given
        for norm, new_mean, new_var in zip(norms, mean.split(sizes), var.split(sizes)):
            norm.running_mean.copy_(new_mean)
            norm.running_var.copy_(new_var)
    return out


def folded_norm(norms: Sequence[nn.BatchNorm2d], shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm of ``x + shift`` (channels of ``norms``) as ``x * scale + offset``: (scale, offset)."""
    weight, bias, mean, var = norm_tensors(norms)
    scale = weight * torch.rsqrt(var + norms[0].eps)
    return scale, bias + (shift - mean) * scale


def conv_norm(x: torch.Tensor, blocks: Sequence[nn.Sequential]) -> torch.Tensor:
    """The 1x1 convolutions and BatchNorms of the :func:`conv_bn` ``blocks`` on ``x`` (N, C, T, V), concatenated.

    One convolution for all blocks; in training mode the convolutions' biases are left to :func:`batch_norm`
    (they cancel), in eval mode the BatchNorms are folded into the convolutions.
    """
    n, c, t, v = x.shape
    weight, bias = cat_conv_params([block[0] for block in blocks])
    norms = [block[1] for block in blocks]
    if norms[0].training:
        if kernels.fused(x):  # bmm over the expanded weight: ``weight @ x`` would fold N into a copy of x
            product = torch.bmm(weight.flatten(1).expand(n, -1, -1), x.reshape(n, c, t * v)).view(n, -1, t, v)
        else:
            product = F.conv2d(x, weight)
        return batch_norm(product, norms, shift=bias)
    scale, offset = folded_norm(norms, bias)
    return pointwise(x, weight * scale.view(-1, 1, 1, 1), offset)


def nearest_neighbours(x: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (..., V, k) of the ``k`` nodes nearest to each node of ``x`` (..., C, V) (itself included).

    The squared distance is formed as ``2 x_u·x_v - |x_u|² - |x_v|²``, as the public code does, so that
    near-ties are broken the same way; in float32 (or wider) under autocast.
    """
    with full_precision(x):
        x = wide(x)
        inner = 2 * x.transpose(-1, -2) @ x
        squares = x.pow(2).sum(-2, keepdim=True)
        return (inner - squares - squares.transpose(-1, -2)).topk(k, dim=-1).indices


class EdgeConv(nn.Module):
    """Dynamic graph EdgeConv: for each node, max over its k nearest neighbours of a conv of (x_n − x_u, x_u).

    ``conv`` is the public (1x1 conv without bias, BN, LeakyReLU 0.2); input and output (..., C, V), where the
    leading axes may also index several EdgeConvs of the same width (see :func:`edge_convs`).
    """

    def __init__(self, channels: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.conv = nn.Sequential(nn.Conv2d(2 * channels, channels, 1, bias=False), nn.BatchNorm2d(channels),
                                  nn.LeakyReLU(0.2, inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return edge_convs([self], x.unsqueeze(1)).squeeze(1)


def edge_convs(modules: Sequence[EdgeConv], x: torch.Tensor) -> torch.Tensor:
    """EdgeConv ``modules[l]`` applied to ``x[:, l]`` for every l at once: (N, L, C, V) → (N, L, C, V).

    With ``W = [W_diff, W_centre]``, ``W (x_n − x_u; x_u) = W_diff x_n + (W_centre − W_diff) x_u``: the products
    run on the V nodes and the k neighbours are gathered afterwards: batched matrix products with the fused
    kernels, one grouped convolution (a group per EdgeConv) with the library ones (``model.kernels``).
    """
    n, count, c, v = x.shape
    k = modules[0].k
    weight = torch.stack([m.conv[0].weight.flatten(1) for m in modules])  # (L, C, 2C)
    w_diff, w_centre = weight[..., :c], weight[..., c:]
    if kernels.fused(x):
        neighbour_part = w_diff @ x  # (N, L, C, V)
        centre_part = (w_centre - w_diff) @ x
    else:
        both = torch.cat((w_diff, w_centre - w_diff), dim=1).flatten(0, 1).unsqueeze(-1)  # (L·2C, C, 1)
        neighbour_part, centre_part = F.conv1d(x.flatten(1, 2), both, groups=count).view(n, count, 2, c, v).unbind(2)
    index = nearest_neighbours(x, k).flatten(-2)  # (N, L, V*k)
    gathered = neighbour_part.gather(-1, index.unsqueeze(2).expand(-1, -1, c, -1)).view(n, count, c, v, k)
    y = (gathered + centre_part.unsqueeze(-1)).view(n, count * c, v, k)
    y = F.leaky_relu(batch_norm(y, [m.conv[1] for m in modules]), 0.2)
    return y.amax(-1).view(n, count, c, v)


class PeaksAndRows(torch.autograd.Function):
    """Per-layer temporal maxima (N, L, W, V) of ``x`` (N, L, W, T, V), and ``x`` as rows (N·W, L, T·V).

    The rows, a copy with the layers next to the positions, make the layer-weighted sum one batched matrix
    product. Both outputs' gradients reach the backward together, which assembles them into one tensor in
    ``x``'s layout in a single pass (autograd would zero a tensor for the maxima's and add the two).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, layers, width, t, v = x.shape
        # max, not amax: where a layer's output is constant over time (joints outside the layer), the
        # gradient goes to one frame, as in the public model
        peaks, index = x.max(3)
        ctx.save_for_backward(index)
        return peaks, x.transpose(1, 2).reshape(n * width, layers, t * v)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_peaks: torch.Tensor, grad_rows: torch.Tensor) -> torch.Tensor:
        (index,) = ctx.saved_tensors
        n, layers, width, v = index.shape
        grad = grad_rows.view(n, width, layers, -1, v).transpose(1, 2).contiguous()
        return grad.scatter_add_(3, index.unsqueeze(3), grad_peaks.unsqueeze(3))


class HierarchyAttention(nn.Module):
    """AHA: a sigmoid weight per channel and hierarchy layer from the layers' temporal maxima.

    Per layer, the down-projected maximum is averaged over the layer's joints; an EdgeConv (k=3) across the
    layers and a 1x1 ``aggregate`` give the weights. Parameters as the public ``aha``. In float32 (or wider)
    under autocast: it works on temporal maxima, so this costs little.
    """

    def __init__(self, channels: int, groups: Groups) -> None:
        super().__init__()
        self.conv_down = conv_bn(channels, channels // 4, relu=True)
        self.edge_conv = EdgeConv(channels // 4, k=3)
        self.aggregate = nn.Conv1d(channels // 4, channels, 1)
        num_node = sum(len(group) for group in groups)
        members = torch.zeros(len(groups) - 1, num_node)  # 0/1 and counts: exact in every dtype
        for layer, (inner, outer) in enumerate(pairwise(groups)):
            members[layer, [*inner, *outer]] = 1.0
        self.register_buffer("members", members, persistent=False)
        self.register_buffer("counts", members.sum(-1), persistent=False)

    def forward(self, summary: torch.Tensor) -> torch.Tensor:
        """Weights (N, C, L) from the per-layer temporal maxima ``summary`` (N, C, L, V)."""
        with full_precision(summary):
            down = self.conv_down(wide(summary))
            sampled = (down * self.members).sum(-1) / self.counts  # mean over each layer's joints, (N, C/4, L)
            return torch.sigmoid(self.aggregate(self.edge_conv(sampled)))


class HDGraphConv(nn.Module):
    """Hierarchically decomposed graph convolution over all layers, then BN, residual and ReLU.

    Per layer l and subset j: ``BN(conv_lj(A_lj applied to ReLU(BN(conv_down_l(x)))))``; with the layer's
    EdgeConv output the layer has C_out channels; layers are summed or weighted by :class:`HierarchyAttention`.
    """

    def __init__(self, in_channels: int, out_channels: int, adjacency: np.ndarray, adaptive: bool = True,
                 groups: Groups = (), attention: bool = True) -> None:
        super().__init__()
        if not adaptive:
            raise InputError("model_args.adaptive: HD-GCN learns its hierarchical graph (adaptive must be true)")
        num_layers, num_subsets = adjacency.shape[:2]
        inter = out_channels // (num_subsets + 1)
        self.PA = nn.Parameter(torch.from_numpy(np.asarray(adjacency, dtype=np.float32)))
        self.conv_down = nn.ModuleList(conv_bn(in_channels, inter, relu=True) for _ in range(num_layers))
        self.conv = nn.ModuleList(
            nn.ModuleList([*(conv_bn(inter, inter) for _ in range(num_subsets)), EdgeConv(inter, k=5)])
            for _ in range(num_layers)
        )
        self.conv_d = self.conv[-1]  # the public module keeps this alias of the last layer (in its state dict too)
        self.aha = HierarchyAttention(out_channels, groups) if attention else None
        self.down = conv_bn(in_channels, out_channels) if in_channels != out_channels else nn.Identity()
        self.bn = nn.BatchNorm2d(out_channels)
        init_convs_and_bns(self)
        bn_init(self.bn, 1e-6)

    def subsets(self, down: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every layer's subset branches (N, L, S·C', T, V) from its down-projection ``down`` (N, L, C', T, V).

        The subset convolutions run before the graph products (they commute), batched over layers. Training mode
        applies the BatchNorms; eval mode folds their scales into the convolutions and returns their offsets
        (L, S·C') apart, to be added to the few values that need them (None in training).
        """
        n, layers, inter, t, v = down.shape
        subsets = self.PA.shape[1]
        blocks = [layer[j] for layer in self.conv for j in range(subsets)]
        weight, bias = cat_conv_params([block[0] for block in blocks])
        norms = [block[1] for block in blocks]
        offset = None
        if not self.training:
            scale, offset = folded_norm(norms, bias)
            weight, offset = weight * scale.view(-1, 1, 1, 1), offset.view(layers, -1)
        if kernels.fused(down):
            mixed = weight.view(layers, subsets * inter, inter) @ down.flatten(3)  # (N, L, S·C', T·V)
        else:
            mixed = F.conv2d(down.flatten(1, 2), weight, groups=layers)  # (N, L·S·C', T, V)
        graph = self.PA.transpose(-1, -2).unsqueeze(0)  # (1, L, S, V_in, V_out)
        spread = (mixed.view(n, layers, subsets, inter * t, v) @ graph).view(n, -1, t, v)
        if self.training:
            spread = batch_norm(spread, norms, shift=bias)
        return spread.view(n, layers, subsets * inter, t, v), offset

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        """The layers (subset branches and EdgeConv) summed, or weighted by the attention, (N, C_out, T, V)."""
        n, _, t, v = x.shape
        down = torch.relu_(conv_norm(x, self.conv_down)).view(n, self.PA.shape[0], -1, t, v)
        spread, offset = self.subsets(down)
        edges = edge_convs([layer[-1] for layer in self.conv], down.mean(3))  # (N, L, C', V)
        layers, width = spread.shape[1:3]
        if self.aha is None:
            weight = None
            graph_part, edge_part = spread.sum(1), edges.sum(1)
        else:
            peaks, rows = PeaksAndRows.apply(spread)
            if offset is not None:
                peaks = peaks + offset.unsqueeze(-1)
            weight = self.aha(torch.cat((peaks, edges), dim=2).transpose(1, 2))  # (N, C, L)
            graph_part = torch.bmm(weight[:, :width].reshape(-1, 1, layers), rows).view(n, width, t, v)
            edge_part = torch.einsum("nlcv,ncl->ncv", edges, weight[:, width:])
        out = torch.cat((graph_part, edge_part.unsqueeze(2).expand(-1, -1, t, -1)), dim=1)
        if offset is not None:  # eval mode: the subset BatchNorms' offsets, summed or weighted as their layers
            level = offset.sum(0).expand(n, -1) if weight is None else (weight[:, :width] * offset.t()).sum(-1)
            out[:, :width] += level.view(n, width, 1, 1)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if isinstance(self.down, nn.Identity) else conv_norm(x, [self.down])
        return torch.relu_(self.bn(self.aggregate(x)).add_(residual))


class BiasedConvBN(nn.Module):
    """Temporal (kernel x 1) convolution without bias plus a separate ``bias`` (1, C, 1, 1), then BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        pad = (kernel_size - 1) * dilation // 2
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1),
                              dilation=(dilation, 1), bias=False)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        return self.bn(F.conv2d(x, conv.weight, self.bias.flatten(), conv.stride, conv.padding, conv.dilation))


class Model(GCNBackbone):
    """HD-GCN with the constructor of the public ``model.HDGCN.Model`` (plus ``base_channel``).

    ``graph`` is a hierarchical graph (``graph.ntu_rgb_d_hierarchy.Graph`` with ``graph_args`` ``CoM`` 1, 2 or
    21; ``graph.ucla_hierarchy.Graph``) or a :class:`HierarchicalGraph` instance.
    """

    graph_ndim = 4

    def __init__(
        self, num_class: int = 60, num_point: int = 25, num_person: int = 2,
        graph: str | HierarchicalGraph = "graph.ntu_rgb_d_hierarchy.Graph", graph_args: Mapping[str, Any] | None = None,
        in_channels: int = 3, drop_out: float = 0.0, adaptive: bool = True, base_channel: int = 64,
    ) -> None:
        hierarchy = resolve_hierarchy(graph, graph_args)
        graph_conv = partial(HDGraphConv, groups=hierarchy.groups)
        super().__init__(graph_conv, num_class, num_point, num_person, hierarchy, None, in_channels, drop_out,
                         adaptive, base_channel, first_graph_conv=partial(graph_conv, attention=False),
                         temporal=BiasedConvBN)
