"""HD-GCN backbone: hierarchical graphs, public state-dict contract, equivalence with the plain reference for both
kernel sets (``model.kernels``), float32 attention and neighbour choice under autocast."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.reference_hdgcn import Model as ReferenceModel
from engine.errors import InputError
from graph import ntu_rgb_d_hierarchy, ucla_hierarchy
from model import kernels
from model.hdgcn import Model, nearest_neighbours
from model.registry import build_backbone
from tests.test_ctrgcn import (
    BF16,
    BOTH_KERNELS,
    DispatchLog,
    assert_each_kernel_set_gives,
    assert_training_step_matches,
    calibrate,
    perturbed,
)
from tools.complexity import main as complexity_main

UCLA = {"graph": "graph.ucla_hierarchy.Graph", "num_point": 20, "num_person": 1}
SMALL = {"num_class": 7, "base_channel": 16}


@pytest.mark.parametrize("module, com, layers", [
    (ntu_rgb_d_hierarchy, 1, 6), (ntu_rgb_d_hierarchy, 2, 6), (ntu_rgb_d_hierarchy, 21, 6),
    (ucla_hierarchy, 1, 6), (ucla_hierarchy, 2, 5), (ucla_hierarchy, 3, 6),
])
def test_hierarchy_layers_join_neighbouring_groups(module, com, layers):
    graph = module.Graph(CoM=com)
    v = graph.num_node
    assert graph.A.shape == (layers, 3, v, v) and graph.groups[0] == (com - 1,)
    assert sorted(joint for group in graph.groups for joint in group) == list(range(v))
    for layer, (inner, outer) in enumerate(zip(graph.groups[:-1], graph.groups[1:])):
        identity, forward, reverse = graph.A[layer]
        np.testing.assert_array_equal(np.flatnonzero(np.diag(identity)), sorted((*inner, *outer)))
        np.testing.assert_array_equal(forward > 0, (reverse > 0).T)
        np.testing.assert_allclose(forward[np.ix_(outer, inner)], 1.0 / len(outer))  # column i: its edges to g_l+1
        assert forward.sum() == pytest.approx(len(inner)) and reverse.sum() == pytest.approx(len(outer))


def test_public_key_names_and_shapes():
    state = Model(num_class=120).state_dict()
    expected = {
        "l1.gcn1.PA": (6, 3, 25, 25),
        "l1.gcn1.conv_down.0.0.weight": (16, 3, 1, 1),
        "l1.gcn1.conv.5.2.1.running_var": (16,),
        "l1.gcn1.conv.0.3.conv.0.weight": (16, 32, 1, 1),
        "l1.gcn1.conv_d.3.conv.1.weight": (16,),
        "l1.gcn1.down.0.weight": (64, 3, 1, 1),
        "l2.gcn1.aha.conv_down.0.weight": (16, 64, 1, 1),
        "l2.gcn1.aha.edge_conv.conv.0.weight": (16, 32, 1, 1),
        "l2.gcn1.aha.aggregate.weight": (64, 16, 1),
        "l3.tcn1.branches.0.3.conv.weight": (16, 16, 5, 1),
        "l3.tcn1.branches.1.3.bias": (1, 16, 1, 1),
        "l5.residual.conv.weight": (128, 64, 1, 1),
        "fc.weight": (120, 256),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    for absent in ("l1.gcn1.aha.aggregate.weight", "l1.gcn1.conv.0.3.conv.0.bias", "l3.tcn1.branches.0.3.conv.bias",
                   "l2.gcn1.aha.members"):
        assert absent not in state
    assert len(state) == 3017 and state.keys() == ReferenceModel(num_class=120).state_dict().keys()
    assert sum(p.numel() for p in Model(num_class=120).parameters()) == 1_675_400


def twins(**kwargs) -> tuple[Model, ReferenceModel]:
    """Our model and the reference with identical, non-trivial float64 weights."""
    torch.manual_seed(0)
    reference = perturbed(ReferenceModel(**kwargs)).double()
    ours = Model(**kwargs).double()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return ours, reference


@pytest.mark.parametrize("kwargs, shape", [
    ({"graph_args": {"labeling_mode": "spatial", "CoM": 1}}, (3, 3, 12, 25, 2)),
    (dict(UCLA, graph_args={"CoM": 2}), (3, 3, 12, 20, 1)),
])
def test_logits_gradients_and_statistics_match_reference_in_float64(kwargs, shape):
    ours, reference = twins(**SMALL, **kwargs)
    x = torch.randn(shape, dtype=torch.float64)
    assert_training_step_matches(ours, reference, x, torch.tensor([1, 6, 3]))
    ours.eval()
    reference.eval()
    with torch.no_grad():
        assert_each_kernel_set_gives(ours, x, reference(x), 1e-9)


def test_checkpoint_round_trip_and_pooled_feature(tmp_path):
    torch.manual_seed(0)
    source = perturbed(Model(**SMALL))
    x = torch.randn(2, 3, 16, 25, 2)
    calibrate(source, x)
    torch.save(source.state_dict(), tmp_path / "hdgcn.pt")
    target = Model(**SMALL)
    target.load_state_dict(torch.load(tmp_path / "hdgcn.pt", weights_only=True), strict=True)
    source.eval()
    target.eval()
    logits, features = target.forward_features(x)
    assert features.shape == (2, 64)
    torch.testing.assert_close(logits, source(x))
    torch.testing.assert_close(logits, target.fc(features))


@BOTH_KERNELS
def test_autocast_casts_each_weight_once_with_the_library_kernels(kind):
    """Under autocast the library (CUDA) kernels cast the 1x1 convolutions' weights as they are, the fused CPU
    kernels expanded along the batch (the detector's positive control), in training and evaluation."""
    model = perturbed(Model(**SMALL))
    x = torch.randn(2, 3, 8, 25, 2)
    for mode in (model.train, model.eval):
        mode()
        with kernels.use(kind), torch.autocast(**BF16), DispatchLog() as log:
            logits = model(x)
        assert logits.dtype == torch.float32
        assert (log.expanded_casts() == []) == (kind == "cuda"), log.expanded_casts()


def test_attention_and_neighbour_choice_run_in_float32_under_autocast():
    torch.manual_seed(0)
    model = perturbed(Model(**SMALL))
    attention = model.l2.gcn1.aha
    seen = {}
    attention.register_forward_hook(lambda module, inputs, output: seen.update(weights=output.dtype))
    with torch.autocast(**BF16):
        model(torch.randn(2, 3, 8, 25, 2))
    assert seen["weights"] == torch.float32
    summary = torch.randn(4, 16, 6, 25).bfloat16()  # (N, C, L, V): the layers' temporal maxima
    with torch.autocast(**BF16):
        weights = attention(summary)
    assert weights.dtype == torch.float32  # the same bf16 input, weighted without autocast:
    torch.testing.assert_close(weights, attention(summary.float()), rtol=1e-6, atol=1e-6)
    nodes = torch.randn(64, 16, 25).bfloat16()  # (..., C, V): bf16 inner products would pick other neighbours
    with torch.autocast(**BF16):
        chosen = nearest_neighbours(nodes, 5)
    assert torch.equal(chosen, nearest_neighbours(nodes.float(), 5))


def test_every_parameter_receives_a_gradient():
    model = perturbed(Model(**SMALL))
    torch.nn.functional.cross_entropy(model(torch.randn(2, 3, 12, 25, 2)), torch.tensor([0, 5])).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        if name.endswith(("weight", "PA")):
            assert param.grad.abs().sum() > 0, name


def test_buffers_follow_the_module():
    model = Model(**SMALL).double()
    assert model.l2.gcn1.aha.members.dtype == torch.float64
    assert model(torch.randn(1, 3, 8, 25, 2, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.cuda
def test_runs_on_cuda():
    model = Model(**SMALL).cuda()
    assert model(torch.randn(2, 3, 8, 25, 2, device="cuda")).device.type == "cuda"


def test_registry_and_errors():
    model = build_backbone("model.HDGCN.Model", {**SMALL, "graph": "graph.ntu_rgb_d_hierarchy.Graph",
                                                 "graph_args": {"labeling_mode": "spatial", "CoM": 2}})
    assert isinstance(model, Model) and model.l1.gcn1.PA[0, 0, 1, 1] == 1  # joint 2 is the centre
    assert isinstance(build_backbone("hdgcn", SMALL), Model)
    with pytest.raises(InputError, match="CoM=3"):
        Model(graph_args={"CoM": 3})
    with pytest.raises(InputError, match="graph.ntu_rgb_d.Graph"):
        Model(graph="graph.ntu_rgb_d.Graph")
    with pytest.raises(InputError, match="adaptive"):
        Model(adaptive=False)
    with pytest.raises(InputError, match="num_point=25"):
        Model(graph="graph.ucla_hierarchy.Graph")


def test_complexity_command_on_the_hd_joint_config(capsys):
    config = Path(__file__).resolve().parents[1] / "config" / "nturgbd120-cross-subject" / "hd_joint.yaml"
    assert complexity_main(["--config", str(config)]) == 0
    assert "hdgcn" in (out := capsys.readouterr().out) and "1,675,400 parameters, 1.812 GMACs per sample" in out
