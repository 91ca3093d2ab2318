"""``model.kernels``: the kernel set chosen by device or forced, and the ``tf32`` config key (docs/gpu.md,
"Kernels and TF32"). No GPU is needed: CUDA is faked where a run must believe it has one, and the TF32 flags
can be set without a device. Every test leaves the flags as it found them."""
from __future__ import annotations

import pytest
import torch

from engine import launch
from engine.config import resolve_config
from engine.errors import InputError
from model import kernels


@pytest.fixture(autouse=True)
def tf32_flags_kept():
    """Put the TF32 flags back after the test, whatever it did."""
    before = kernels.tf32_flags()
    yield
    kernels.set_tf32_flags(*before)


@pytest.fixture
def one_gpu(monkeypatch):
    """Make this process believe it has one CUDA device (nothing touches CUDA)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def flags_during_run(argv: list[str]) -> tuple[torch.device, tuple[bool, bool]]:
    """The device and the TF32 flags that a phase run by ``run_on_devices`` sees for the config of ``argv``."""
    return launch.run_on_devices(lambda config, runtime: (runtime.device, kernels.tf32_flags()), resolve_config(argv))


def test_the_input_device_chooses_the_kernels_unless_forced():
    on_cpu, elsewhere = torch.zeros(1), torch.zeros(1, device="meta")  # "meta" stands for any non-CPU device
    assert kernels.fused(on_cpu) and not kernels.fused(elsewhere)
    with kernels.use("cuda"):
        assert not kernels.fused(on_cpu)
        with kernels.use("cpu"):
            assert kernels.fused(elsewhere)
        assert not kernels.fused(on_cpu)
    assert kernels.fused(on_cpu) and not kernels.fused(elsewhere)
    with pytest.raises(ValueError, match="expected one of cpu, cuda, got 'gpu'"), kernels.use("gpu"):
        pass


@pytest.mark.parametrize("enabled, precision", [(True, "high"), (False, "highest")])
def test_tf32_sets_both_flags_on_cuda_for_the_run_only(enabled, precision):
    kernels.set_tf32_flags(not enabled, not enabled)
    with kernels.tf32(enabled, torch.device("cuda", 0)):
        assert kernels.tf32_flags() == (enabled, enabled)
        assert torch.get_float32_matmul_precision() == precision
    assert kernels.tf32_flags() == (not enabled, not enabled)


@pytest.mark.parametrize("enabled", [True, False])
def test_tf32_leaves_the_flags_alone_on_the_cpu(enabled):
    kernels.set_tf32_flags(False, True)  # PyTorch's own defaults
    with kernels.tf32(enabled, torch.device("cpu")):
        assert kernels.tf32_flags() == (False, True)
    assert kernels.tf32_flags() == (False, True)


def test_the_tf32_key_reaches_a_cuda_run_and_not_a_cpu_one(one_gpu, monkeypatch):
    monkeypatch.setattr(torch, "set_flush_denormal", lambda mode: True)  # the CPU set-up's: kept out of this process
    kernels.set_tf32_flags(False, True)
    assert flags_during_run([]) == (torch.device("cuda", 0), (False, False))  # default: full float32
    assert flags_during_run(["--tf32", "true"]) == (torch.device("cuda", 0), (True, True))
    assert flags_during_run(["--device", "cpu", "--tf32", "true"]) == (torch.device("cpu"), (False, True))
    assert kernels.tf32_flags() == (False, True)


def test_the_tf32_key_is_a_boolean():
    assert resolve_config([])["tf32"] is False
    with pytest.raises(InputError, match="config key 'tf32': expected true or false, got 'fast'"):
        resolve_config(["--tf32", "fast"])
