"""ONNX export of the skeleton-only model: onnxruntime on the CPU gives PyTorch's logits (batch axis dynamic)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model.registry import build_backbone
from tools import export_onnx

ort = pytest.importorskip("onnxruntime", reason="the ONNX extra (requirements-deploy.txt) is not installed")
pytest.importorskip("onnx", reason="the ONNX extra (requirements-deploy.txt) is not installed")

ARGS = {"num_class": 3, "num_point": 25, "num_person": 2, "graph": "graph.ntu_rgb_d.Graph"}
GRAPHS = {"hdgcn": {"graph": "graph.ntu_rgb_d_hierarchy.Graph", "graph_args": {"labeling_mode": "spatial", "CoM": 21}}}


def calibrated(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in eval mode with batch-norm statistics of real activations (as trained weights have), so
    that logits have a trained model's scale rather than an untrained one's thousands."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: one batch gives its exact statistics
    model.train()
    with torch.no_grad():
        model(0.5 * torch.randn(8, 3, 16, 25, 2))
    return model.eval()


@pytest.mark.parametrize("name", ["ctrgcn", "tdgcn", "hdgcn"])
def test_onnxruntime_matches_pytorch(tmp_path, make_config, name):
    args = {**ARGS, **GRAPHS.get(name, {})}
    torch.manual_seed(0)
    model = calibrated(build_backbone(name, args))
    weights = tmp_path / "skeleton.pt"
    torch.save(model.state_dict(), weights)
    config = make_config(tmp_path, model=name, model_args=args)
    out = tmp_path / "model.onnx"
    assert export_onnx.main(["--weights", str(weights), "--config", str(config), "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    for batch in (1, 3):
        sample = 0.5 * torch.randn(batch, 3, 16, 25, 2)
        with torch.inference_mode():
            expected = model(sample).numpy()
        (got,) = session.run(None, {export_onnx.INPUT: sample.numpy()})
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert export_onnx.main(["--weights", str(weights), "--config", str(config), "--out", str(out)]) == 2
