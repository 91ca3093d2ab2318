"""Every shipped config resolves and runs one real training step on tiny data of its benchmark's shape.

The TD-GCN and HD-GCN configs (``td_*``, ``hd_*``) run their step at 8 base channels on 16-frame windows, to
keep the suite fast. The HD-GCN configs carry the public HD-GCN schedule, every other one the step decay.
A config naming several text stores (one per prompt) gets as many tiny stores, combined as it says
(``mmcl.text_combine``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from engine.checkpoint import initialise_from_weights
from engine.config import read_config_file, resolve_config
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
PROMPTS, WIDTH = 3, 8  # tiny text stores: at most this many prompts of this width


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
    for suffix, store_names in (("", names), ("_ucla", ucla_names)):
        for folder, kind in (("rgb", "rgb"), *((f"text{prompt}", "text") for prompt in range(PROMPTS))):
            write_feature_store(root / (folder + suffix), rng.standard_normal((2, WIDTH)).astype(np.float32),
                                store_names, {"kind": kind})
    return {"root": root}


def text_stores(path: Path, root: Path, suffix: str) -> tuple[str, int]:
    """The ``mmcl.text_features`` override for config ``path`` (a list of as many tiny stores as it lists) and
    the width FRM then reads."""
    mmcl = read_config_file(ROOT / path).get("mmcl") or {}
    listed = mmcl.get("text_features")
    if not isinstance(listed, list):
        return str(root / f"text0{suffix}"), WIDTH
    assert 1 < len(listed) <= PROMPTS, listed
    stores = ", ".join(str(root / f"text{prompt}{suffix}") for prompt in range(len(listed)))
    return f"[{stores}]", WIDTH * (len(listed) if mmcl.get("text_combine", "concat") == "concat" else 1)


def resolve(path: Path, root: Path, work_dir: Path, text: str) -> dict[str, Any]:
    """Config ``path`` on the tiny data of its benchmark, reading the text store(s) ``text``."""
    ucla = path.parent.name == "ucla"
    data = root / ("ucla" if ucla else "ntu")
    narrow = path.name.startswith(NARROW)
    return resolve_config([
        "--config", str(ROOT / path), "--work-dir", str(work_dir), "--batch-size", "2", "--num-worker", "0",
        "--train-feeder-args", f"data_path={data}", *(["repeat=1"] if ucla else []),
        *(["window_size=16"] if narrow else []),
        "--test-feeder-args", f"data_path={data}",
        *(["--model-args", "base_channel=8"] if narrow else []),
        "--mmcl", f"rgb_features={root / ('rgb_ucla' if ucla else 'rgb')}", f"text_features={text}"])


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p) for p in CONFIGS])
def test_config_runs_one_training_step(path, tiny_data, tmp_path):
    root = tiny_data["root"]
    text, text_width = text_stores(path, root, "_ucla" if path.parent.name == "ucla" else "")
    config = resolve(path, root, tmp_path, text)
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
    if mmcl:
        assert objective.frm.phi[0].in_features == text_width


def test_the_token_ids_config_takes_a_public_checkpoint_s_frm(tiny_data, tmp_path):
    """3 token ids a sample: FRM has the public layout, and a public MMCL checkpoint's FRM loads into it as is."""
    ids = tmp_path / "ids"
    write_feature_store(ids, np.array([[30522, 2748, 102], [30522, 2053, 102]], np.float32),
                        ["S001C001P001R001A001", "S001C001P002R001A002"], {"kind": "text", "features": "token-ids"})
    config = resolve(Path("config/nturgbd120-cross-subject/joint_blip_token_ids.yaml"), tiny_data["root"],
                     tmp_path / "run", str(ids))
    train_set = build_dataset(config, "train")
    objective, _, _ = build_objective(config, build_model(config, None), train_set)
    public = {"mlp.0.weight": torch.randn(64, 3), "mlp.0.bias": torch.randn(64), "mlp.2.weight": torch.randn(2, 64),
              "mlp.2.bias": torch.randn(2), "PosMatrix": torch.rand(120), "NegMatrix": torch.rand(120)}
    torch.save(public, tmp_path / "public.pt")
    assert "6 keys mapped, 0 ignored" in initialise_from_weights(objective, tmp_path / "public.pt", [])
    frm = objective.frm
    for ours, theirs in ((frm.phi[0].weight, "mlp.0.weight"), (frm.phi[2].bias, "mlp.2.bias"),
                         (frm.pos, "PosMatrix"), (frm.neg, "NegMatrix")):
        torch.testing.assert_close(ours.detach(), public[theirs])


#: The public HD-GCN configs' schedule (Jho-Yonsei/HD-GCN config/*/*_com_*.yaml; lr_ratio is its main.py default).
PUBLIC_HD_GCN_SCHEDULE = {"base_lr": 0.1, "warm_up_epoch": 5, "num_epoch": 90, "batch_size": 64, "optimizer": "SGD",
                          "nesterov": True, "weight_decay": 0.0004, "lr_scheduler": "cosine", "lr_ratio": 0.001}


def test_hd_gcn_configs_take_the_public_cosine_and_the_others_step_decay():
    for path in CONFIGS:
        config = resolve_config(["--config", str(ROOT / path)])
        expected = PUBLIC_HD_GCN_SCHEDULE if config["model"] == "hdgcn" else {"lr_scheduler": "step"}
        assert {key: config[key] for key in expected} == expected, path
