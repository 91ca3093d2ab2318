"""CTR-GCN backbone: shapes, public state-dict contract, equivalence with the straightforward reference for both
kernel sets (``model.kernels``)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bench.reference_ctrgcn import Model as ReferenceModel
from engine.errors import InputError
from graph.ucla import Graph as UclaGraph
from model import kernels
from model.ctrgcn import Model, TemporalMaxPool
from model.registry import BACKBONES, build_backbone
from tools.complexity import main as complexity_main

UCLA = {"graph": "graph.ucla.Graph", "num_point": 20, "num_person": 1}

#: Parameters whose gradient is mathematically zero: biases of convolutions feeding a training-mode BatchNorm.
BN_FED_BIAS = re.compile(r"(tcn1\.branches\.\d\.0|tcn1\.branches\.[01]\.3\.conv|gcn1\.down\.0|residual\.conv)\.bias$")
#: Runs a test once with each kernel set, whatever the device: the fused CPU ones and the library (CUDA) ones
#: (the ids are not the bare kinds: tests/conftest.py skips tests with a "cuda" keyword on machines without one).
BOTH_KERNELS = pytest.mark.parametrize("kind", kernels.KINDS, ids=[f"{kind}-kernels" for kind in kernels.KINDS])
BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}


class DispatchLog(TorchDispatchMode):
    """The aten operators run inside it, with the shape and strides of each one's first tensor argument."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, tuple[int, ...], tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        first = args[0] if args and isinstance(args[0], torch.Tensor) else torch.empty(0)
        self.calls.append((func, tuple(first.shape), first.stride()))
        return func(*args, **(kwargs or {}))

    def expanded_casts(self) -> list[tuple[int, ...]]:
        """Shapes of the broadcast (stride-0) tensors that a dtype cast materialised, as autocast's cast of an
        expanded weight does (one copy of the weight per sample)."""
        return [shape for func, shape, strides in self.calls if func is torch.ops.aten._to_copy.default
                and any(stride == 0 and size > 1 for size, stride in zip(shape, strides))]


def perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Randomise what the initialisation leaves trivial: alpha = 0, gcn BN scale 1e-6, zero biases."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.rand(param.shape, generator=generator, dtype=param.dtype)
            if name.endswith(("alpha", "gcn1.bn.weight")):
                param.copy_(noise * 0.8 + 0.2)
            elif name.endswith(".bias"):
                param.copy_(noise * 0.2 - 0.1)
    return model


def calibrate(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``x`` (one training-mode pass, cumulative average)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    with torch.no_grad():
        model(x)
    for norm in norms:
        norm.momentum = 0.1


def twin_models(dtype: torch.dtype = torch.float32, **kwargs) -> tuple[Model, ReferenceModel]:
    """Our model and the reference with identical (non-trivial) weights."""
    torch.manual_seed(0)
    reference = perturbed(ReferenceModel(**kwargs)).to(dtype)
    ours = Model(**kwargs).to(dtype)
    ours.load_state_dict(reference.state_dict(), strict=True)
    return ours, reference


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({}, (2, 3, 16, 25, 2)),
        ({"in_channels": 6}, (2, 6, 16, 25, 2)),
        (UCLA, (3, 3, 16, 20, 1)),
        (dict(UCLA, in_channels=6), (3, 6, 12, 20, 1)),
    ],
)
def test_output_shapes(kwargs, shape):
    model = Model(num_class=7, base_channel=16, **kwargs)
    logits, features = model.forward_features(torch.randn(shape))
    assert logits.shape == (shape[0], 7)
    assert features.shape == (shape[0], 64)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("num_class, expected", [(60, 1_446_672), (120, 1_462_092)])
def test_parameter_count(num_class, expected):
    assert sum(p.numel() for p in Model(num_class=num_class).parameters()) == expected


def test_public_key_names_and_shapes():
    state = Model().state_dict()
    expected = {
        "data_bn.weight": (150,),
        "l1.gcn1.PA": (3, 25, 25),
        "l1.gcn1.alpha": (1,),
        "l1.gcn1.convs.0.conv1.weight": (8, 3, 1, 1),
        "l1.gcn1.convs.2.conv2.bias": (8,),
        "l1.gcn1.convs.1.conv3.weight": (64, 3, 1, 1),
        "l1.gcn1.convs.2.conv4.weight": (64, 8, 1, 1),
        "l1.gcn1.down.0.weight": (64, 3, 1, 1),
        "l1.gcn1.down.1.running_var": (64,),
        "l1.gcn1.bn.weight": (64,),
        "l2.gcn1.convs.0.conv1.weight": (8, 64, 1, 1),
        "l5.gcn1.down.1.num_batches_tracked": (),
        "l5.residual.conv.weight": (128, 64, 1, 1),
        "l8.residual.bn.running_mean": (256,),
        "l3.tcn1.branches.0.0.weight": (16, 64, 1, 1),
        "l3.tcn1.branches.1.3.conv.weight": (16, 16, 5, 1),
        "l3.tcn1.branches.1.3.bn.bias": (16,),
        "l3.tcn1.branches.2.4.running_var": (16,),
        "l10.tcn1.branches.3.1.weight": (64,),
        "fc.weight": (60, 256),
        "fc.bias": (60,),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    for absent in ("l1.residual.conv.weight", "l2.residual.conv.weight", "l2.gcn1.down.0.weight"):
        assert absent not in state
    assert len(state) == 822


@pytest.mark.parametrize("adaptive", [True, False])
def test_state_dict_matches_reference(adaptive):
    ours = {k: v.shape for k, v in Model(adaptive=adaptive).state_dict().items()}
    reference = {k: v.shape for k, v in ReferenceModel(adaptive=adaptive).state_dict().items()}
    assert ours == reference


def test_non_adaptive_adjacency_is_a_non_persistent_buffer():
    model = Model(adaptive=False, base_channel=16)
    assert not any(key.endswith((".PA", ".A")) for key in model.state_dict())
    model = model.double()
    assert model.l1.gcn1.A.dtype == torch.float64 and model.l1.gcn1.A.shape == (3, 25, 25)


def assert_training_step_matches(ours: torch.nn.Module, reference: torch.nn.Module, x: torch.Tensor,
                                 y: torch.Tensor) -> None:
    """With each kernel set, a training step of ``ours`` gives the gradients and BatchNorm statistics of the same
    step of ``reference`` (float64 models in the same state; ``ours`` is put back to it before each set)."""
    start = {name: value.clone() for name, value in ours.state_dict().items()}
    torch.nn.functional.cross_entropy(reference.train()(x), y).backward()
    expected = dict(reference.named_parameters())
    for kind in kernels.KINDS:
        ours.load_state_dict(start, strict=True)
        ours.zero_grad(set_to_none=True)
        with kernels.use(kind):
            torch.nn.functional.cross_entropy(ours.train()(x), y).backward()
        for name, param in ours.named_parameters():
            torch.testing.assert_close(param.grad, expected[name].grad, rtol=1e-7, atol=1e-12, msg=f"{kind}: {name}")
        state = ours.state_dict()
        for name, value in reference.state_dict().items():
            torch.testing.assert_close(state[name], value, msg=f"{kind}: {name}")


def assert_each_kernel_set_gives(model: torch.nn.Module, x: torch.Tensor, expected: torch.Tensor,
                                 tolerance: float) -> None:
    """``model(x)`` equals ``expected`` (to ``tolerance``, relative and absolute) with each kernel set."""
    for kind in kernels.KINDS:
        with kernels.use(kind):
            torch.testing.assert_close(model(x), expected, rtol=tolerance, atol=tolerance,
                                       msg=lambda text, kind=kind: f"{kind} kernels: {text}")


@pytest.mark.parametrize("adaptive", [True, False])
def test_eval_logits_match_reference_after_checkpoint_round_trip(adaptive, tmp_path):
    ours, reference = twin_models(adaptive=adaptive)
    x = torch.randn(4, 3, 16, 25, 2)
    calibrate(reference, x)
    torch.save(reference.state_dict(), tmp_path / "reference.pt")
    ours.load_state_dict(torch.load(tmp_path / "reference.pt", weights_only=True), strict=True)
    ours.eval()
    reference.eval()
    with torch.no_grad():
        expected = reference(x)
        assert expected.std() > 0.1
        assert_each_kernel_set_gives(ours, x, expected, 1e-5)


def test_train_gradients_match_reference():
    ours, reference = twin_models(dtype=torch.float64)
    x = torch.randn(3, 3, 16, 25, 2, dtype=torch.float64)
    assert_training_step_matches(ours, reference, x, torch.tensor([1, 7, 59]))


@BOTH_KERNELS
def test_autocast_casts_each_weight_once_with_the_library_kernels(kind):
    """The library (CUDA) kernels cast the 1x1 convolutions' weights themselves under autocast; the fused CPU
    kernels cast them expanded along the batch (the detector's positive control)."""
    model = perturbed(Model(num_class=5, base_channel=16))
    with kernels.use(kind), torch.autocast(**BF16), DispatchLog() as log:
        logits = model(torch.randn(4, 3, 8, 25, 2))
    assert logits.dtype == torch.float32
    if kind == "cuda":
        assert log.expanded_casts() == []
    else:
        assert (8, 16, 3) in log.expanded_casts()  # l1's conv3 weights of the 3 subsets, one copy per sequence
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    assert all(param.grad is not None for param in model.parameters())


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["ctrgcn", "tdgcn", "hdgcn"])
def test_on_a_gpu_the_device_picks_the_library_kernels_and_they_agree(name):
    """On CUDA the library kernels run by default and give the fused kernels' float64 logits; under float16
    autocast no weight is cast expanded."""
    torch.manual_seed(0)
    model = perturbed(build_backbone(name, {"num_class": 5, "base_channel": 16})).double().cuda().eval()
    x = torch.randn(2, 3, 16, 25, 2, dtype=torch.float64, device="cuda")
    with torch.no_grad():
        with kernels.use("cpu"):
            expected = model(x)
        assert not kernels.fused(x)
        torch.testing.assert_close(model(x), expected, rtol=1e-9, atol=1e-9)
        with torch.autocast("cuda", dtype=torch.float16), DispatchLog() as log:
            model.float()(x.float())
    assert log.expanded_casts() == []


def test_temporal_max_pool_layout_per_kernel_set():
    """The fused kernels pool in channels-last layout (a copy there and back), the library ones in NCHW."""
    pool, copy = torch.ops.aten.max_pool2d_with_indices.default, torch.ops.aten.clone.default
    expected_ops = {"cpu": [copy, pool, copy], "cuda": [pool]}
    x = torch.randn(2, 4, 9, 5)
    outputs = {}
    for kind in kernels.KINDS:
        with kernels.use(kind), DispatchLog() as log:
            outputs[kind] = TemporalMaxPool(stride=2)(x)
        assert [func for func, _, _ in log.calls] == expected_ops[kind]
        assert outputs[kind].is_contiguous() and outputs[kind].shape == (2, 4, 5, 5)
    torch.testing.assert_close(outputs["cuda"], outputs["cpu"], rtol=0, atol=0)


def test_every_parameter_receives_a_gradient():
    model = perturbed(Model(num_class=5, base_channel=16))
    logits = model(torch.randn(2, 3, 16, 25, 2))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3])).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        if not BN_FED_BIAS.search(name):
            assert param.grad.abs().sum() > 0, name


def test_alpha_zero_blocks_topology_gradients_like_the_public_model():
    model = Model(num_class=5, base_channel=16)
    model(torch.randn(2, 3, 16, 25, 2)).sum().backward()
    assert model.l2.gcn1.convs[0].conv4.weight.grad.abs().max() == 0
    assert model.l2.gcn1.alpha.grad.abs().max() > 0


def test_forward_features_is_pooled_before_dropout():
    torch.manual_seed(0)
    model = Model(num_class=5, base_channel=16, drop_out=0.5)
    x = torch.randn(2, 3, 16, 25, 2)
    calibrate(model, x)
    model.eval()
    logits, features = model.forward_features(x)
    torch.testing.assert_close(logits, model.fc(features))
    model.train()
    first_logits, first = model.forward_features(x)
    second_logits, second = model.forward_features(x)
    torch.testing.assert_close(first, second)
    assert not torch.allclose(first_logits, second_logits)


def test_features_are_the_mean_over_persons():
    torch.manual_seed(0)
    two = Model(num_class=5, base_channel=16).eval()
    one = Model(num_class=5, num_person=1, base_channel=16).eval()
    shared = {k: v for k, v in two.state_dict().items() if not k.startswith("data_bn")}
    assert all("data_bn" in key for key in one.load_state_dict(shared, strict=False).missing_keys)
    a, b = torch.randn(2, 3, 16, 25, 1), torch.randn(2, 3, 16, 25, 1)
    _, features = two.forward_features(torch.cat([a, b], dim=-1))
    torch.testing.assert_close(features, (one.forward_features(a)[1] + one.forward_features(b)[1]) / 2)


def test_flat_input_equals_five_dimensional_input():
    model = Model(num_class=5, num_person=1, base_channel=16).eval()
    x = torch.randn(2, 3, 16, 25, 1)
    flat = x[..., 0].permute(0, 2, 3, 1).reshape(2, 16, 75)
    torch.testing.assert_close(model(flat), model(x))


def test_graph_instance_and_errors():
    model = Model(graph=UclaGraph(), num_point=20, num_person=1, base_channel=16)
    assert model(torch.randn(1, 3, 8, 20, 1)).shape == (1, 60)
    with pytest.raises(InputError, match="graph.nope"):
        Model(graph="graph.nope.Graph")
    with pytest.raises(InputError, match="num_point=25"):
        Model(graph="graph.ucla.Graph")
    with pytest.raises(InputError, match="labeling_mode"):
        Model(graph_args={"labeling_mode": "uniform"})
    with pytest.raises(InputError, match="base_channel"):
        Model(base_channel=12)
    with pytest.raises(ValueError, match="C\\*V\\*M"):
        Model(base_channel=16)(torch.randn(1, 3, 8, 20, 2))


def test_registry_builds_by_short_and_dotted_name():
    assert set(BACKBONES) >= {"ctrgcn", "tdgcn", "model.ctrgcn.Model", "model.tdgcn.Model"}
    model = build_backbone("model.ctrgcn.Model", {"num_class": 9, "base_channel": 16})
    assert isinstance(model, Model) and model.fc.out_features == 9
    with pytest.raises(InputError, match="'resnet'; registered: ctrgcn"):
        build_backbone("resnet", {})
    with pytest.raises(InputError, match="'num_classes'"):
        build_backbone("ctrgcn", {"num_classes": 9})


def test_complexity_command_reports_the_published_size_and_our_cost(capsys):
    config = Path(__file__).resolve().parents[1] / "config" / "nturgbd120-cross-subject" / "joint.yaml"
    assert complexity_main(["--config", str(config)]) == 0
    out = capsys.readouterr().out
    # 1.666 GMACs: the published 1.94 minus the embedding convolutions moved after the temporal mean
    assert "1,462,092 parameters, 1.666 GMACs per sample of shape (3, 64, 25, 2)" in out
