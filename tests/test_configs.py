"""Every shipped config resolves and runs one real training step on tiny data of its benchmark's shape.

The TD-GCN and HD-GCN configs (``td_*``, ``hd_*``) run their step at 8 base channels on 16-frame windows, to
keep the suite fast. The HD-GCN configs carry the public HD-GCN schedule, every other one the step decay.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.config import resolve_config
from engine.data import build_dataset, train_loader
from engine.distributed import Runtime
from engine.objective import build_objective
from engine.runlog import RunLog
from engine.schedule import build_optimizer
from engine.trainer import build_model, train_one_epoch
from feeders.feature_store import write_feature_store
from feeders.prepared import write_prepared_split

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.relative_to(ROOT) for p in (ROOT / "config").glob("*/*.yaml") if p.parent.name != "demo")
NARROW = ("td_", "hd_", "baseline_td_", "baseline_hd_")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("benchmarks")
    rng = np.random.default_rng(0)
    names = ["S001C001P001R001A001", "S001C001P002R001A002"]
    for split in ("train", "test"):
        write_prepared_split(root / "ntu", split, rng.standard_normal((2, 3, 40, 25, 2)).astype(np.float32),
                             [0, 1], names)
    ucla = root / "ucla"
    ucla.mkdir()
    for view in ("v01", "v03"):
        for action in (1, 2):
            name = f"a0{action}_s01_e00_{view}"
            body = rng.standard_normal((30, 20, 3)).tolist()
            (ucla / f"{name}.json").write_text(json.dumps({"file_name": name, "skeletons": body, "label": action}))
    ucla_names = ["a01_s01_e00_v01", "a02_s01_e00_v01"]
    for kind, store_names in (("rgb", names), ("text", names), ("rgb_ucla", ucla_names), ("text_ucla", ucla_names)):
        write_feature_store(root / kind, rng.standard_normal((2, 8)).astype(np.float32), store_names,
                            {"kind": kind.split("_")[0]})
    return {"root": root}


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p) for p in CONFIGS])
def test_config_runs_one_training_step(path, tiny_data, tmp_path):
    root = tiny_data["root"]
    ucla = path.parent.name == "ucla"
    data = root / ("ucla" if ucla else "ntu")
    suffix = "_ucla" if ucla else ""
    narrow = path.name.startswith(NARROW)
    config = resolve_config([
        "--config", str(ROOT / path), "--work-dir", str(tmp_path), "--batch-size", "2", "--num-worker", "0",
        "--train-feeder-args", f"data_path={data}", *(["repeat=1"] if ucla else []),
        *(["window_size=16"] if narrow else []),
        "--test-feeder-args", f"data_path={data}",
        *(["--model-args", "base_channel=8"] if narrow else []),
        "--mmcl", f"rgb_features={root / ('rgb' + suffix)}", f"text_features={root / ('text' + suffix)}"])
    assert config["work_dir"] == str(tmp_path)
    train_set = build_dataset(config, "train")
    backbone = build_model(config, getattr(train_set, "num_class", None))
    assert backbone.fc.out_features == config["model_args"]["num_class"]
    objective, train_set, _ = build_objective(config, backbone, train_set)
    runtime = Runtime(torch.device("cpu"))
    optimizer = build_optimizer([p for p in objective.parameters() if p.requires_grad], config)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    before = backbone.fc.weight.detach().clone()
    step, stats = train_one_epoch(objective, train_loader(train_set, config, runtime, 0), optimizer, scaler,
                                  config, runtime, 0, 0, RunLog(tmp_path, enabled=False))
    assert step == 1 and np.isfinite(stats["loss"])
    assert not torch.equal(before, backbone.fc.weight)
    mmcl = not path.name.startswith("baseline_")
    assert ("loss_align" in stats and "loss_refine" in stats) == mmcl


#: The public HD-GCN configs' schedule (Jho-Yonsei/HD-GCN config/*/*_com_*.yaml; lr_ratio is its main.py default).
PUBLIC_HD_GCN_SCHEDULE = {"base_lr": 0.1, "warm_up_epoch": 5, "num_epoch": 90, "batch_size": 64, "optimizer": "SGD",
                          "nesterov": True, "weight_decay": 0.0004, "lr_scheduler": "cosine", "lr_ratio": 0.001}


def test_hd_gcn_configs_take_the_public_cosine_and_the_others_step_decay():
    for path in CONFIGS:
        config = resolve_config(["--config", str(ROOT / path)])
        expected = PUBLIC_HD_GCN_SCHEDULE if config["model"] == "hdgcn" else {"lr_scheduler": "step"}
        assert {key: config[key] for key in expected} == expected, path
