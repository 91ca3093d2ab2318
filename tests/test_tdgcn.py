"""TD-GCN backbone: shapes, gradients, both embedding variants, public key names, graph-conv maths, equivalence
with the public-structure reference for both kernel sets (``model.kernels``)."""
from __future__ import annotations

import pytest
import torch

from bench.reference_tdgcn import Model as ReferenceModel
from graph.ntu_rgb_d import Graph
from model import ctrgcn, kernels
from model.tdgcn import Model, TDGraphConv
from tests.test_ctrgcn import (
    BF16,
    BOTH_KERNELS,
    DispatchLog,
    assert_each_kernel_set_gives,
    assert_training_step_matches,
    calibrate,
    perturbed,
)

UCLA = {"graph": "graph.ucla.Graph", "num_point": 20, "num_person": 1}


def direct_td_graph_conv(conv: TDGraphConv, x: torch.Tensor) -> torch.Tensor:
    """The public TD-GCN unit written out subset by subset: sum_k beta * CTR_k + gamma * Z_k, BN, residual, ReLU."""
    adjacency = conv.PA if conv.adaptive else conv.A
    total = 0
    for k, sub in enumerate(conv.convs):
        x1, x3 = sub.conv1(x).mean(-2), sub.conv3(x)
        topology = sub.conv4(torch.tanh(x1.unsqueeze(-1) - x1.unsqueeze(-2))) * conv.alpha + adjacency[k]
        ctr = torch.einsum("ncuv,nctv->nctu", topology, x3)
        frame_mean = x3.mean(1)
        temporal = torch.tanh(frame_mean.unsqueeze(-1) - frame_mean.unsqueeze(-2))
        total = total + ctr * conv.beta + torch.einsum("ntuv,nctv->nctu", temporal, x3) * conv.gamma
    return torch.relu(conv.bn(total) + conv.down(x))


@pytest.mark.parametrize("second_embedding", [False, True])
@pytest.mark.parametrize(
    "kwargs, shape",
    [({}, (2, 3, 16, 25, 2)), ({"in_channels": 6}, (2, 6, 16, 25, 2)), (UCLA, (3, 3, 12, 20, 1))],
)
def test_output_shapes(kwargs, shape, second_embedding):
    model = Model(num_class=7, base_channel=16, second_embedding=second_embedding, **kwargs)
    logits, features = model.forward_features(torch.randn(shape))
    assert logits.shape == (shape[0], 7) and features.shape == (shape[0], 64)
    assert torch.isfinite(logits).all()


@BOTH_KERNELS
@pytest.mark.parametrize("adaptive", [True, False])
@pytest.mark.parametrize("in_channels, out_channels", [(3, 16), (16, 16)])
def test_graph_conv_matches_the_direct_formula(in_channels, out_channels, adaptive, kind):
    torch.manual_seed(0)
    conv = TDGraphConv(in_channels, out_channels, Graph().A, adaptive=adaptive).double()
    with torch.no_grad():
        conv.alpha.fill_(0.7)
        conv.beta.fill_(0.8)
        conv.gamma.fill_(0.3)
        conv.bn.weight.fill_(1.0)
    x = torch.randn(3, in_channels, 10, 25, dtype=torch.float64)
    with kernels.use(kind):
        torch.testing.assert_close(conv(x), direct_td_graph_conv(conv, x))


def test_public_key_names():
    with_conv2 = Model(second_embedding=True).state_dict()
    without = Model(second_embedding=False).state_dict()
    ctr = ctrgcn.Model().state_dict()
    scalars = {f"l{i}.gcn1.{name}" for i in range(1, 11) for name in ("beta", "gamma")}
    assert all(with_conv2[key].shape == () for key in scalars)
    assert set(with_conv2) == set(ctr) | scalars
    assert set(without) == {key for key in with_conv2 if ".conv2." not in key}
    assert with_conv2["l2.gcn1.convs.1.conv2.weight"].shape == (8, 64, 1, 1)
    assert sum(v.numel() for k, v in with_conv2.items() if "num_batches" not in k and "running" not in k) == 1_446_692


def test_second_embedding_is_frozen_and_unused():
    torch.manual_seed(0)
    model = Model(num_class=5, base_channel=16, second_embedding=True).eval()
    conv2 = model.l3.gcn1.convs[0].conv2
    assert not conv2.weight.requires_grad
    x = torch.randn(2, 3, 16, 25, 2)
    before = model(x)
    with torch.no_grad():
        conv2.weight.normal_()
    torch.testing.assert_close(model(x), before)


@pytest.mark.parametrize("second_embedding", [False, True])
def test_every_trainable_parameter_receives_a_gradient(second_embedding):
    torch.manual_seed(0)
    model = Model(num_class=5, base_channel=16, second_embedding=second_embedding)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("alpha"):
                param.fill_(0.5)
    logits = model(torch.randn(2, 3, 16, 25, 2))
    torch.nn.functional.cross_entropy(logits, torch.tensor([1, 4])).backward()
    for name, param in model.named_parameters():
        if ".conv2." in name:
            assert param.grad is None, name
        else:
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
            if name.endswith(("weight", "PA", "alpha", "beta", "gamma")):
                assert param.grad.abs().sum() > 0, name


def test_loads_its_own_checkpoint_strictly(tmp_path):
    torch.manual_seed(0)
    source = Model(num_class=5, base_channel=16, second_embedding=True)
    torch.save(source.state_dict(), tmp_path / "tdgcn.pt")
    target = Model(num_class=5, base_channel=16, second_embedding=True)
    target.load_state_dict(torch.load(tmp_path / "tdgcn.pt", weights_only=True), strict=True)
    x = torch.randn(2, 3, 8, 25, 2)
    torch.testing.assert_close(target.eval()(x), source.eval()(x))
    with pytest.raises(RuntimeError, match="conv2"):
        Model(num_class=5, base_channel=16).load_state_dict(source.state_dict(), strict=True)


def test_matches_the_public_structure_reference_in_float64():
    """With each kernel set, gradients and BatchNorm statistics of a training step, then evaluation logits, equal
    those of the subset-by-subset reference written as the public code is."""
    torch.manual_seed(0)
    reference = perturbed(ReferenceModel(num_class=60)).double()
    ours = Model(num_class=60).double()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(3, 3, 16, 25, 2, dtype=torch.float64)
    assert_training_step_matches(ours, reference, x, torch.tensor([1, 7, 59]))
    calibrate(reference, x)
    ours.load_state_dict(reference.state_dict(), strict=True)
    with torch.no_grad():
        expected_logits = reference.eval()(x)
        assert_each_kernel_set_gives(ours.eval(), x, expected_logits, 1e-9)
    assert expected_logits.std() > 0.1


def test_library_kernels_cast_no_expanded_weight_under_autocast():
    """The library (CUDA) kernels' weights are cast as they are under autocast (the fused CPU kernels cast
    them expanded: tests/test_ctrgcn.py's control)."""
    model = perturbed(Model(num_class=4, base_channel=8, second_embedding=True))
    with kernels.use("cuda"), torch.autocast(**BF16), DispatchLog() as log:
        logits = model(torch.randn(2, 3, 8, 25, 2))
    assert log.expanded_casts() == [] and logits.dtype == torch.float32
