"""The backbone benches' timing loop: interleaved rounds with alternating order, per-round speed-up spread."""
from __future__ import annotations

from bench.timing import comparison_row, interleaved


def test_rounds_alternate_the_order_of_the_runs():
    calls: list[str] = []
    runs = {name: (lambda name=name: calls.append(name)) for name in ("ours", "reference")}
    times = interleaved(runs, warmup=1, repeats=3)
    assert calls == ["ours", "reference"] * 2 + ["reference", "ours", "ours", "reference"]
    assert {name: len(t) for name, t in times.items()} == {"ours": 3, "reference": 3}


def test_a_row_gives_median_times_and_the_spread_of_per_round_speed_ups():
    row = comparison_row("eval, b=2, fp32", 2, {"ours": [1.0, 2.0, 1.0], "reference": [2.0, 2.0, 3.0]})
    assert "1000.0 ms (   2.0/s)" in row and "2000.0 ms (   1.0/s)" in row
    assert row.endswith("2.00x [1.00–3.00]")  # per round: 2, 1, 3
