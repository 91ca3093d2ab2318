"""Shared fixtures: a tiny prepared skeleton dataset and run configs over it; tiny VLMs and strips to ask them about.

The suite runs on the CPU on every machine: the run configs say ``device: [cpu]``, and every test not marked
``@pytest.mark.cuda`` sees no GPU (``torch.cuda`` reports none, and child processes get an empty
``CUDA_VISIBLE_DEVICES``), so that code choosing CUDA when available picks the CPU and bit-exact results hold.
Tests marked ``cuda`` see the GPU and are skipped on machines without one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from feeders.prepared import write_prepared_split

NUM_CLASS = 3


def _tiny_split(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Class-dependent sinusoidal motions of one person, zero-padded after a random length."""
    labels = np.arange(n) % NUM_CLASS
    t = np.linspace(0, 2 * np.pi, 40)
    data = np.zeros((n, 3, 40, 25, 2), np.float32)
    for i, label in enumerate(labels):
        length = rng.integers(24, 41)
        wave = np.sin((label + 1) * t[:length])[None, :, None]
        data[i, :, :length, :, 0] = wave + 0.05 * rng.standard_normal((3, length, 25))
    names = [f"S001C001P{i + 1:03d}R001A{label + 1:03d}" for i, label in enumerate(labels)]
    return data, labels, names


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("test", 12)):
        write_prepared_split(root, split, *_tiny_split(rng, n))
    return root


def write_config(tmp_path: Path, dataset_dir: Path, **overrides) -> Path:
    """A YAML config training a narrow CTR-GCN on the tiny dataset for two epochs; ``overrides`` replace keys."""
    feeder = {"data_path": str(dataset_dir), "window_size": 16}
    config = {
        "work_dir": str(tmp_path / "run"),
        "feeder": "ntu",
        "train_feeder_args": {**feeder, "split": "train", "p_interval": [0.5, 1], "random_rot": True},
        "test_feeder_args": {**feeder, "split": "test", "p_interval": [0.95]},
        "model": "ctrgcn",
        "model_args": {"num_class": NUM_CLASS, "num_point": 25, "num_person": 2,
                       "graph": "graph.ntu_rgb_d.Graph", "base_channel": 8},
        "base_lr": 0.05, "step": [2], "warm_up_epoch": 1, "batch_size": 8, "test_batch_size": 5,
        "num_epoch": 2, "eval_interval": 1, "num_worker": 0, "save_epoch": 1, "seed": 3, "device": ["cpu"],
        "model_saved_name": "ignored",
    }
    config.update(overrides)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``cuda`` on a machine without a CUDA GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def cpu_only(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide the GPUs from every test not marked ``cuda``, in this process and in the processes it starts."""
    if request.node.get_closest_marker("cuda") is not None:
        return
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture
def make_config(dataset_dir):
    """``make_config(folder, **overrides)``: write a config for the tiny dataset into ``folder``."""
    return lambda folder, **overrides: write_config(folder, dataset_dir, **overrides)


@pytest.fixture(scope="session")
def blip_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised BLIP VQA model and its processor, saved as a local model folder."""
    from tests.tiny_vlms import save_tiny_blip  # transformers loads only for the tests that need it

    return save_tiny_blip(tmp_path_factory.mktemp("blip"))


@pytest.fixture(scope="session")
def llava_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised LLaVA (CLIP vision + Llama text) with a word-level tokenizer and chat template."""
    from tests.tiny_vlms import save_tiny_llava

    return save_tiny_llava(tmp_path_factory.mktemp("llava"))


@pytest.fixture
def strips(tmp_path) -> dict[str, Path]:
    """Five strip JPEGs (``tests.tiny_vlms.NAMES``) and a names file listing them."""
    from tests.tiny_vlms import NAMES, write_strips

    return write_strips(tmp_path, NAMES)
