"""The bf16 bench's report: per precision the epoch time and top-1 over seeds, paired differences to float32."""
from __future__ import annotations

from bench.bench_amp import report


def _run(seconds: float, top1: float) -> dict:
    return {"epoch_seconds": seconds, "top1": top1, "weights": "w.pt"}


def test_the_report_pairs_each_precision_with_float32_seed_by_seed():
    trained = {"fp32": [_run(10.0, 0.80), _run(12.0, 0.90)], "bf16": [_run(5.0, 0.78), _run(8.0, 0.91)],
               "fp32-1thread": [_run(20.0, 0.81), _run(24.0, 0.89)]}
    evaluated = [{"top1": {"fp32": 0.8, "bf16": 0.79}, "agree": 0.99, "max_logit_difference": 0.0625}] * 2
    text = report(trained, evaluated, [1, 2])
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert "| 85.0 ± 7.1 | — |" in rows["fp32"]
    assert "| 84.5 ± 9.2 | -0.5 ± 2.1 | 78.0, 91.0 |" in rows["bf16"]  # paired: -2 and +1 points
    assert "| 0.0 ± 1.4 |" in rows["fp32-1thread"]
    assert "epochs 1.75× faster [1.50–2.00]" in text  # per seed 10/5 and 12/8
    assert "| seed 2 | 80.0 | 79.0 | 99.0 % | 0.062 |" in text
