"""``amp``: float16 (with a loss scaler) or bfloat16 autocast, with the losses, the softmax, the topology
refinement and the GCN's BatchNorm in float32 under both; on the CPU the log says whether it has native
bfloat16. (Resuming across a change of precision: tests/test_run_faults.py.)"""
from __future__ import annotations

import json

import pytest
import torch

from engine.config import resolve_config
from engine.distributed import Runtime
from engine.errors import InputError
from engine.trainer import amp_dtype, amp_note, device_notes, grad_scaler
from main_mmcl import main
from model.ctrgcn import CTRGraphConv
from model.fam import contrastive_alignment_loss
from model.mmcl import MMCLObjective
from model.tdgcn import Model as TDModel
from tests.test_mmcl import _objective

#: The autocast dtypes, run on the CPU (float16 there is slow but computes what it does on CUDA).
DTYPES = [torch.bfloat16, torch.float16]


@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_and_softmax_are_float32_under_autocast(dtype):
    torch.manual_seed(0)
    objective: MMCLObjective = _objective()
    data, label = torch.randn(4, 3, 12, 25, 2), torch.tensor([0, 1, 2, 3])
    rgb, text = torch.randn(4, 12), torch.randn(4, 6)
    seen = {}
    objective.backbone.l2.tcn1.register_forward_hook(lambda module, inputs, output: seen.update(tcn=output.dtype))
    with torch.autocast("cpu", dtype=dtype):
        logits, losses = objective(data, label, rgb, text)
        weights = objective.frm.weights(text)
    assert seen["tcn"] == dtype  # the backbone did run in the low precision
    assert logits.dtype == torch.float32  # the classifier did not: bf16 logits tie
    assert {name: value.dtype for name, value in losses.items()} == dict.fromkeys(losses, torch.float32)
    assert weights.dtype == torch.float32
    a, b = torch.randn(6, 256), torch.randn(6, 256)
    with torch.autocast("cpu", dtype=dtype):
        autocast_loss = contrastive_alignment_loss(a, b)
    # the similarities are float32 products: bf16 ones would differ by about 1e-3
    assert autocast_loss.item() == pytest.approx(contrastive_alignment_loss(a, b).item(), rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_topology_refinement_and_its_batchnorm_run_in_float32_under_autocast(dtype):
    torch.manual_seed(0)
    conv = CTRGraphConv(16, 32, torch.rand(3, 25, 25).numpy())
    with torch.no_grad():
        conv.alpha.fill_(0.5)
    x = torch.randn(2, 16, 8, 25)
    seen = {}
    conv.bn.register_forward_pre_hook(lambda module, inputs: seen.update(bn=inputs[0].dtype))
    with torch.autocast("cpu", dtype=dtype):
        topology = conv.topology(x.to(dtype))
        features = conv.features(x)
        out = conv(x)
    assert features.dtype == dtype and seen["bn"] == torch.float32 and out.dtype == torch.float32
    expected = conv.topology(x.to(dtype).float())  # the same low-precision input, refined without autocast
    for got, want in zip(topology, expected):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_td_gcn_trains_under_autocast_with_float32_losses():
    torch.manual_seed(0)
    model = TDModel(num_class=4, base_channel=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.randn(2, 3, 8, 25, 2))
    loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("cpuinfo, expected", [
    ("flags\t\t: fpu sse2 avx512f avx512_bf16 amx_bf16\n", "amp: bfloat16 autocast on the CPU (native: avx512_bf16, amx_bf16)"),
    ("Features\t: fp asimd bf16\n", "amp: bfloat16 autocast on the CPU (native: bf16)"),
    ("flags\t\t: fpu sse2 avx2 avx512f\n", "warning: amp: this CPU has no native bfloat16"),
])
def test_amp_note_says_whether_the_cpu_has_native_bf16(cpuinfo, expected):
    assert amp_note({"amp": True}, torch.device("cpu"), cpuinfo).startswith(expected)
    assert amp_note({"amp": False}, torch.device("cpu"), cpuinfo) is None


def test_the_log_names_tf32_on_cuda_only():
    cuda = Runtime(torch.device("cuda", 0), note="running on cuda:0")
    assert device_notes({"amp": False, "tf32": True}, cuda) == [
        "running on cuda:0", "tf32: on (float32 products and convolutions in TF32)"]
    assert device_notes({"amp": False, "tf32": False}, cuda)[1].startswith("tf32: off (full float32")
    assert device_notes({"amp": False, "tf32": True}, Runtime(torch.device("cpu"), note="on the CPU")) == ["on the CPU"]


@pytest.mark.parametrize("amp, dtype, scaled", [(False, None, False), (True, torch.bfloat16, False),
                                                ("bfloat16", torch.bfloat16, False), ("float16", torch.float16, True)])
def test_one_key_chooses_the_precision_and_the_loss_scaler(amp, dtype, scaled):
    cpu = torch.device("cpu")
    assert amp_dtype({"amp": amp}, cpu) == dtype and grad_scaler({"amp": amp}, cpu).is_enabled() == scaled
    assert amp_dtype({"amp": amp}, torch.device("cuda", 0)) == (torch.float16 if amp is True else dtype)


def test_amp_names_a_dtype_or_says_true_or_false():
    assert resolve_config(["--amp", "bfloat16"])["amp"] == "bfloat16" and resolve_config(["--amp", "true"])["amp"]
    with pytest.raises(InputError, match=r"'amp': expected true or false, got 'fp8' \(or an autocast dtype: "
                                         r"float16 or bfloat16\)"):
        resolve_config(["--amp", "fp8"])


@pytest.mark.parametrize("amp, logged", [
    (True, ("amp: bfloat16 autocast on the CPU", "warning: amp: this CPU has no native bfloat16")),
    ("float16", ("amp: float16 autocast with loss scaling on the CPU",)),
])
def test_an_amp_run_on_the_cpu_logs_its_precision_and_trains(tmp_path, make_config, amp, logged):
    config = make_config(tmp_path, num_epoch=1, amp=amp)
    assert main(["--config", str(config)]) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert any(line in log for line in logged)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert 0 <= results["last"]["top1"] <= 1 and results["last_epoch_train"]["loss"] > 0
    scale = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["scaler"].get("scale")
    assert (scale is not None) == (amp == "float16")  # the loss scale is saved, to resume with


def test_hd_gcn_trains_under_float16_autocast_with_its_attention_in_float32():
    from model.hdgcn import HierarchyAttention
    from model.hdgcn import Model as HDModel
    from tests.test_hdgcn import SMALL

    torch.manual_seed(0)
    model = HDModel(**SMALL)
    seen = []
    for module in model.modules():
        if isinstance(module, HierarchyAttention):
            module.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    with torch.autocast("cpu", dtype=torch.float16):
        logits = model(torch.randn(2, 3, 8, 25, 2))
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    loss.backward()
    assert seen and set(seen) == {torch.float32} and logits.dtype == torch.float32
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
