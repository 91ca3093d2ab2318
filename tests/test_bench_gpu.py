"""The GPU self-check (``python -m bench.bench_gpu``, docs/gpu.md) on the CPU: tiny shapes, every check in its
own process under a time limit, one summary line per check, exit status 1 unless all pass."""
from __future__ import annotations

import re
import time

import pytest

from bench.bench_gpu import CHECKS, main


def summary(output: str) -> dict[str, tuple[str, str]]:
    """Check name → (status, figures) from the summary lines at the end of the output."""
    lines = output.split("\nsummary: check, status, figures [time used of its limit]\n")[1].strip().splitlines()
    parsed = [re.fullmatch(r"(\S+)\s+(pass|FAIL|ERROR|TIMEOUT)\s+(.*) \[\d+ s of \d+ s\]", line) for line in lines]
    assert all(parsed), lines
    return {match[1]: (match[2], match[3]) for match in parsed}


@pytest.mark.slow
def test_every_check_passes_on_tiny_shapes_on_the_cpu(capsys):
    assert main(["--device", "cpu"]) == 0
    output = capsys.readouterr().out
    assert output.startswith("GPU self-check on cpu, torch ")
    assert "tiny shapes" in output.splitlines()[0]
    results = summary(output)
    assert list(results) == list(CHECKS)
    assert {status for status, _ in results.values()} == {"pass"}
    assert results["ctrgcn"][1].startswith("train/eval samples/s fp32 ")
    assert "left out: TF32 exists on CUDA only" in output
    assert results["gpu-vs-cpu"][1].startswith("largest relative difference: logits 0.0e+00 (tolerance 1e-04)")
    assert "FAM + FRM" in results["mmcl"][1]
    assert results["demo"][1].startswith("--phase test scores on cpu and cpu differ by 0.0e+00 of the largest "
                                         "(tolerance 1e-04)")
    assert results["loader"][1].startswith("samples/s at 0/2 workers: ")


def test_a_check_over_its_limit_is_stopped_and_the_next_one_runs(capsys):
    started = time.perf_counter()
    assert main(["--device", "cpu", "--only", "demo", "hdgcn", "--time-limit", "1"]) == 1
    assert time.perf_counter() - started < 30
    results = summary(capsys.readouterr().out)
    assert results == {name: ("TIMEOUT", "stopped after its 1 s limit") for name in ("demo", "hdgcn")}


def test_a_crashing_check_is_one_error_line(capsys):
    # the tests see no GPU (tests/conftest.py): the check fails as soon as it moves a tensor to CUDA
    assert main(["--device", "cuda:0", "--only", "mmcl", "--time-limit", "60"]) == 1
    status, figure = summary(capsys.readouterr().out)["mmcl"]
    assert status == "ERROR" and "Error" in figure and "\n" not in figure


@pytest.mark.cuda
@pytest.mark.slow
def test_the_gpu_computes_as_the_cpu_does(capsys):
    assert main(["--only", "gpu-vs-cpu", "demo"]) == 0
    assert {status for status, _ in summary(capsys.readouterr().out).values()} == {"pass"}
