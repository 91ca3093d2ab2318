"""``--amp`` on the CPU: bfloat16 autocast with the losses, the softmax, the topology refinement and the GCN's
BatchNorm in float32; the log says whether the CPU has native bfloat16."""
from __future__ import annotations

import json

import pytest
import torch

from engine.trainer import amp_note
from main_mmcl import main
from model.ctrgcn import CTRGraphConv
from model.fam import contrastive_alignment_loss
from model.mmcl import MMCLObjective
from model.tdgcn import Model as TDModel
from tests.test_mmcl import _objective

BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}


def test_losses_and_softmax_are_float32_under_cpu_bf16_autocast():
    torch.manual_seed(0)
    objective: MMCLObjective = _objective()
    data, label = torch.randn(4, 3, 12, 25, 2), torch.tensor([0, 1, 2, 3])
    rgb, text = torch.randn(4, 12), torch.randn(4, 6)
    seen = {}
    objective.backbone.l2.tcn1.register_forward_hook(lambda module, inputs, output: seen.update(tcn=output.dtype))
    with torch.autocast(**BF16):
        logits, losses = objective(data, label, rgb, text)
        weights = objective.frm.weights(text)
    assert seen["tcn"] == torch.bfloat16  # the backbone did run in bf16
    assert logits.dtype == torch.float32  # the classifier did not: bf16 logits tie
    assert {name: value.dtype for name, value in losses.items()} == dict.fromkeys(losses, torch.float32)
    assert weights.dtype == torch.float32
    a, b = torch.randn(6, 256), torch.randn(6, 256)
    with torch.autocast(**BF16):
        autocast_loss = contrastive_alignment_loss(a, b)
    # the similarities are float32 products: bf16 ones would differ by about 1e-3
    assert autocast_loss.item() == pytest.approx(contrastive_alignment_loss(a, b).item(), rel=1e-6)


def test_topology_refinement_and_its_batchnorm_run_in_float32_under_autocast():
    torch.manual_seed(0)
    conv = CTRGraphConv(16, 32, torch.rand(3, 25, 25).numpy())
    with torch.no_grad():
        conv.alpha.fill_(0.5)
    x = torch.randn(2, 16, 8, 25)
    seen = {}
    conv.bn.register_forward_pre_hook(lambda module, inputs: seen.update(bn=inputs[0].dtype))
    with torch.autocast(**BF16):
        topology = conv.topology(x.bfloat16())
        features = conv.features(x)
        out = conv(x)
    assert features.dtype == torch.bfloat16 and seen["bn"] == torch.float32 and out.dtype == torch.float32
    expected = conv.topology(x.bfloat16().float())  # the same bf16 input, refined without autocast
    for got, want in zip(topology, expected):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_td_gcn_trains_under_autocast_with_float32_losses():
    torch.manual_seed(0)
    model = TDModel(num_class=4, base_channel=8)
    with torch.autocast(**BF16):
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


def test_an_amp_run_on_the_cpu_logs_its_precision_and_trains(tmp_path, make_config):
    config = make_config(tmp_path, num_epoch=1, amp=True)
    assert main(["--config", str(config)]) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "amp: bfloat16 autocast on the CPU" in log or "warning: amp: this CPU has no native bfloat16" in log
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert 0 <= results["last"]["top1"] <= 1 and results["last_epoch_train"]["loss"] > 0
