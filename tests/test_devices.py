"""Device choice on machines with fewer GPUs than a config lists (docs/gpu.md, "Devices").

The GPU counts are faked by patching ``torch.cuda.is_available`` / ``device_count`` / ``set_device``: nothing
here touches CUDA, and the phases run by ``run_on_devices`` only record where they were asked to run.
"""
from __future__ import annotations

import pytest
import torch

from engine import launch
from engine.config import dump_config, resolve_config
from engine.distributed import Runtime, visible_devices
from engine.errors import InputError
from main_mmcl import main


@pytest.fixture
def gpus(monkeypatch):
    """``gpus(n)``: make this process see ``n`` CUDA devices (``torch.cuda.set_device`` records its calls)."""
    chosen: list[object] = []

    def fake(count: int) -> list[object]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            monkeypatch.delenv(name, raising=False)
        return chosen

    return fake


@pytest.fixture
def spawned(monkeypatch):
    """The (devices, note) of each ``spawn`` that ``run_on_devices`` starts; no process is started."""
    calls: list[tuple[list[torch.device], str]] = []
    monkeypatch.setattr(launch, "spawn", lambda phase, config, devices, note="": calls.append((devices, note)))
    return calls


def run_here(argv: list[str]) -> Runtime:
    """The runtime ``run_on_devices`` gives a phase for the config resolved from ``argv``."""
    return launch.run_on_devices(lambda config, runtime: runtime, resolve_config(argv))


def config_file(tmp_path, device: list) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(f"device: {device}\n")
    return str(path)


@pytest.mark.parametrize("listed, count, explicit, expected", [
    ([0, 1], 1, False, [0]),          # the public configs on one GPU
    ([0, 1, 2, 3], 2, False, [0, 1]),
    ([1], 1, False, [0]),             # no listed GPU exists: the first one
    ([0, 1], 2, False, [0, 1]),       # all there: unchanged, no note
    ([0, 1], 1, True, [0, 1]),        # --device on the command line: as asked (cuda_ids then refuses)
    ([0, 1], 0, False, [0, 1]),       # no CUDA: unchanged (setup_runtime runs on the CPU)
    (["cpu", "cpu"], 1, False, ["cpu", "cpu"]),
])
def test_visible_devices(gpus, listed, count, explicit, expected):
    gpus(count)
    kept, note = visible_devices(listed, explicit)
    assert kept == expected
    if kept == listed:
        assert note == ""
    else:
        assert note == (f"device {listed} of the config: this machine shows {count} CUDA device(s), so the run "
                        f"uses {' '.join(map(str, expected))} (--device on the command line insists)")


def test_config_listing_two_gpus_starts_on_one(gpus, spawned, tmp_path):
    chosen = gpus(1)
    runtime = run_here(["--config", config_file(tmp_path, [0, 1])])
    assert spawned == []  # one GPU left: no DDP processes
    assert runtime.device == torch.device("cuda", 0) and runtime.data_parallel_ids == [] and chosen == [0]
    assert runtime.note == ("device [0, 1] of the config: this machine shows 1 CUDA device(s), so the run uses 0 "
                            "(--device on the command line insists); running on cuda:0")


def test_config_listing_more_gpus_spawns_on_those_there(gpus, spawned, tmp_path):
    gpus(2)
    run_here(["--config", config_file(tmp_path, [0, 1, 2, 3]), "--batch-size", "64"])
    [(devices, note)] = spawned
    assert devices == [torch.device("cuda", 0), torch.device("cuda", 1)]
    assert note.startswith("device [0, 1, 2, 3] of the config: this machine shows 2 CUDA device(s), so the run uses 0 1")


def test_command_line_device_list_spawns_ddp(gpus, spawned, tmp_path):
    gpus(2)
    run_here(["--config", config_file(tmp_path, [0]), "--device", "0", "1"])
    assert spawned == [([torch.device("cuda", 0), torch.device("cuda", 1)], "")]


def test_command_line_device_list_names_the_missing_gpu(gpus, spawned, tmp_path):
    gpus(1)
    with pytest.raises(InputError, match=r"^--device 0 1: GPU 1 is not visible \(this machine shows 1 CUDA device"):
        run_here(["--config", config_file(tmp_path, [0, 1]), "--device", "0", "1"])
    with pytest.raises(InputError, match="GPU 1 is not visible"):  # DataParallel alike
        run_here(["--config", config_file(tmp_path, [0]), "--device", "0", "1", "--parallel", "dp"])
    assert spawned == []


def test_no_gpu_runs_a_config_device_list_on_the_cpu(gpus, spawned, tmp_path):
    gpus(0)
    runtime = run_here(["--config", config_file(tmp_path, [0, 1])])
    assert spawned == [] and runtime.device == torch.device("cpu")
    assert runtime.note == "CUDA is not available: running on the CPU"


def test_device_origin_is_recorded_but_not_dumped(tmp_path):
    path = config_file(tmp_path, [0, 1])
    assert resolve_config(["--config", path])["device_on_command_line"] is False
    given = resolve_config(["--config", path, "--device", "0", "1"])  # the same list, but asked for
    assert given["device_on_command_line"] is True
    assert "device_on_command_line" not in dump_config(given)


def test_cli_trains_a_two_gpu_config_on_a_machine_without_gpu(make_config, tmp_path, capsys):
    config = make_config(tmp_path, device=[0, 1], num_epoch=1, plots=False)
    assert main(["--config", str(config)]) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "CUDA is not available: running on the CPU" in log


@pytest.mark.cuda
def test_a_config_listing_a_missing_gpu_trains_on_gpu_0(make_config, tmp_path):
    missing = torch.cuda.device_count()
    config = make_config(tmp_path, device=[0, missing], num_epoch=1, plots=False)
    assert main(["--config", str(config)]) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert (f"device [0, {missing}] of the config: this machine shows {missing} CUDA device(s), so the run uses 0 "
            "(--device on the command line insists); running on cuda:0") in log
