"""The backbone benches: interleaved rounds with alternating order, per-round speed-up spread, operator
breakdowns, TD-GCN and public model files."""
from __future__ import annotations

import re

import pytest

from bench import bench_backbone
from bench.timing import breakdown_rows, comparison_row, interleaved


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


def test_the_breakdown_lists_the_heaviest_operators_of_either_model_with_their_shares():
    rows = breakdown_rows({"aten::conv": 30.0, "aten::add": 10.0}, {"aten::einsum": 60.0, "aten::conv": 40.0}, top=2)
    assert [row.split()[0] for row in rows] == ["aten::einsum", "aten::conv", "all"]
    assert "30.0 ms   75%" in rows[1] and "40.0 ms   40%" in rows[1]
    assert "0.0 ms    0%" in rows[0]  # ours has no einsum


def test_the_backbone_bench_times_tdgcn_and_a_public_model_file(capsys):
    bench_backbone.main(["--models", "tdgcn", "--repeats", "1", "--frames", "4", "--profile"])
    bench_backbone.main(["--public", "bench/reference_ctrgcn.py", "--repeats", "1", "--frames", "4"])
    out = capsys.readouterr().out
    assert "TD-GCN against its public-structure reference" in out and "CTR-GCN against bench/reference_ctrgcn.py" in out
    rows = [line for line in out.splitlines() if line.startswith(("train, b=16", "eval, b=1,", "eval, b=64"))]
    assert len(rows) == 6 and all(re.search(r"\d\.\d\dx \[\d\.\d\d–\d\.\d\d\]$", row) for row in rows)
    assert "all operators" in out and "aten::" in out


def test_the_backbone_bench_refuses_a_missing_public_file(tmp_path):
    with pytest.raises(SystemExit, match="no such file"):
        bench_backbone.main(["--public", str(tmp_path / "ctrgcn.py"), "--repeats", "1"])
