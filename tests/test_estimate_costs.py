"""The FLOP-based cost estimate of docs/reproduce.md's recipe: its counts agree with torchvision's published figure."""
from __future__ import annotations

import pytest
import torch
from torchvision.models import Inception_V3_Weights

from bench import estimate_costs


def test_inception_v3_training_step_is_three_times_torchvision_s_forward_figure():
    forward_macs = Inception_V3_Weights.IMAGENET1K_V1.meta["_ops"] * 1e9  # torchvision's "GFLOPS" are MACs, at 299 px
    assert estimate_costs.inception_train_flops(299, 299) == pytest.approx(3 * 2 * forward_macs, rel=0.01)
    # a 5:1 strip resized to shorter side 299 costs about five square images
    assert estimate_costs.inception_train_flops(224, 1120) == pytest.approx(
        5 * estimate_costs.inception_train_flops(299, 299), rel=0.1)


@pytest.mark.slow
def test_the_estimate_prints_a_row_per_benchmark(capsys):
    threads = torch.get_num_threads()
    estimate_costs.main(["--rate", "40", "80"])
    assert torch.get_num_threads() == threads  # the tests after it run as before
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| benchmark")]
    assert [row.split(" | ")[0][2:] for row in rows] == list(estimate_costs.BENCHMARKS)
    assert "Inception-V3 training step on a 224x1120 strip 182.3" in out
