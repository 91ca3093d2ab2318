"""Every shipped config resolves and runs one real training step on tiny data of its benchmark's shape.

The TD-GCN and HD-GCN configs (``td_*``, ``hd_*``) run their step at 8 base channels on 16-frame windows, to
keep the suite fast. The NTU HD-GCN configs carry the public HD-GCN schedule, every other one the step decay.
A config naming several text stores (one per prompt) gets as many tiny stores, combined as it says
(``mmcl.text_combine``). The released code's set-up (``config/<benchmark>/public/``) carries the public values
and trains Inception-V3 with the backbone.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from torchvision.models import inception_v3

import main_mmcl
from engine.checkpoint import initialise_from_weights
from engine.config import DEFAULTS, read_config_file, resolve_config
from engine.data import build_dataset, train_loader
from engine.distributed import Runtime
from engine.objective import build_objective, mmcl_settings
from engine.runlog import RunLog
from engine.schedule import build_optimizer
from engine.trainer import build_model, train_one_epoch
from feeders.feature_store import write_feature_store
from feeders.prepared import write_meta, write_prepared_split

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
        write_prepared_split(root / "coco", split, rng.standard_normal((2, 3, 40, 17, 2)).astype(np.float32),
                             [0, 1], names)  # config/custom: pyskl's 2D COCO keypoints (x, y, score)
    write_meta(root / "coco", "coco2d", 2, "coco", {"train": 2, "test": 2}, ("x", "y", "score"))
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
    data = root / ("ucla" if ucla else "coco" if path.parent.name == "custom" else "ntu")
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
#: The public MMCL config's schedule (liujf69/MMCL-Action config/nturgbd120-cross-subject/joint.yaml), on two GPUs
#: with DataParallel as its run.
PUBLIC_MMCL_SCHEDULE = {"base_lr": 0.1, "weight_decay": 0.0004, "lr_decay_rate": 0.1, "step": [90, 100],
                        "warm_up_epoch": 5, "nesterov": True, "optimizer": "SGD", "lr_scheduler": "step",
                        "device": [0, 1], "parallel": "dp", "batch_size": 200, "test_batch_size": 200, "num_epoch": 110}
#: The public CTR-GCN NW-UCLA config's schedule (Uason-Chen/CTR-GCN config/ucla/default.yaml).
PUBLIC_UCLA_SCHEDULE = {"base_lr": 0.1, "weight_decay": 0.0001, "lr_decay_rate": 0.1, "step": [50], "warm_up_epoch": 5,
                        "nesterov": True, "optimizer": "SGD", "lr_scheduler": "step", "batch_size": 16,
                        "test_batch_size": 64, "num_epoch": 65}


def test_ntu_hd_gcn_configs_take_the_public_cosine_and_the_others_step_decay():
    for path in CONFIGS:
        config = resolve_config(["--config", str(ROOT / path)])
        ntu_hd = config["model"] == "hdgcn" and path.parent.name != "ucla"
        expected = PUBLIC_HD_GCN_SCHEDULE if ntu_hd else {"lr_scheduler": "step"}
        assert {key: config[key] for key in expected} == expected, path
        assert config["eval_interval"] == 1, path  # as the public scripts: the best is taken over every epoch


BENCHMARKS = ("nturgbd-cross-subject", "nturgbd-cross-view", "nturgbd120-cross-subject", "nturgbd120-cross-set", "ucla")
#: Streams of the six-stream ensemble: (bone, vel) of their feeders.
STREAMS = {"joint": (False, False), "bone": (True, False), "joint_motion": (False, True),
           "bone_motion": (True, True), "hd_joint": (False, False), "hd_bone": (True, False)}
PUBLIC = sorted(p.relative_to(ROOT) for p in (ROOT / "config").glob("*/public/*.yaml"))
INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"  # torchvision's Inception_V3_Weights.IMAGENET1K_V1


def test_every_benchmark_and_stream_has_a_released_code_config():
    assert {(path.parent.parent.name, path.stem) for path in PUBLIC} == {(b, s) for b in BENCHMARKS for s in STREAMS}


@pytest.mark.parametrize("path", PUBLIC, ids=[str(p) for p in PUBLIC])
def test_released_code_configs_carry_the_public_values(path):
    config = resolve_config(["--config", str(ROOT / path)])
    ucla, hd = path.parent.parent.name == "ucla", path.stem.startswith("hd_")
    schedule = PUBLIC_UCLA_SCHEDULE if ucla else PUBLIC_HD_GCN_SCHEDULE if hd else PUBLIC_MMCL_SCHEDULE
    assert {key: config[key] for key in schedule} == schedule
    assert config["eval_interval"] == 1 and config["model"] == ("hdgcn" if hd else "ctrgcn")
    train, test = config["train_feeder_args"], config["test_feeder_args"]
    for args in (train, test):
        assert (args["bone"], args["vel"]) == STREAMS[path.stem] and args["window_size"] == (52 if ucla else 64)
    if ucla:
        assert train["repeat"] == 5
    else:
        assert (train["p_interval"], train["random_rot"], test["p_interval"]) == ([0.5, 1], True, [0.95])
    mmcl = mmcl_settings(config)
    assert {key: mmcl[key] for key in ("fam", "frm", "lambda_refine", "lambda_align", "temperature",
                                       "gather_negatives")} == {"fam": True, "frm": True, "lambda_refine": 0.2,
                                                                "lambda_align": 0.1, "temperature": 0.4,
                                                                "gather_negatives": False}
    assert mmcl["rgb_encoder"] == {"type": "inception_v3", "weights_path": f"pretrained/{INCEPTION_FILE}"}
    assert mmcl["rgb_images"].endswith("/rgb_strips") and mmcl["rgb_features"] is None
    assert mmcl["text_features"].endswith("/features/blip_ids/default")
    # the same experiment as the stream's default config, but for the helpers and how the GPUs are used
    default = resolve_config(["--config", str(ROOT / path.parent.parent / f"{path.stem}.yaml")])
    assert {key for key in DEFAULTS if config[key] != default[key]} <= {"work_dir", "mmcl", "parallel"}


@pytest.fixture
def public_inputs(tiny_data, tmp_path) -> dict[str, Path]:
    """Strips, BLIP token ids and a random Inception-V3 weights file (with torchvision's keys) for the tiny NTU data."""
    names = ["S001C001P001R001A001", "S001C001P002R001A002"]
    rng = np.random.default_rng(1)
    strips = tmp_path / "strips"
    strips.mkdir()
    for name in names:
        Image.fromarray(rng.integers(0, 256, (24, 48, 3), dtype=np.uint8)).save(strips / f"{name}.jpg")
    ids = tmp_path / "ids"
    write_feature_store(ids, np.array([[30522, 2748, 102], [30522, 2053, 102]], np.float32), names,
                        {"kind": "text", "features": "token-ids"})
    weights = tmp_path / INCEPTION_FILE
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), weights)
    return {"strips": strips, "ids": ids, "weights": weights, "data": tiny_data["root"] / "ntu"}


def public_argv(inputs: dict[str, Path], work_dir: Path, weights: Path) -> list[str]:
    return ["--config", str(ROOT / "config/nturgbd120-cross-subject/public/joint.yaml"), "--work-dir", str(work_dir),
            "--batch-size", "2", "--num-worker", "0", "--device", "cpu", "--model-args", "base_channel=8",
            "--train-feeder-args", f"data_path={inputs['data']}", "window_size=16",
            "--test-feeder-args", f"data_path={inputs['data']}", "window_size=16",
            "--mmcl", f"rgb_images={inputs['strips']}", f"text_features={inputs['ids']}",
            f"rgb_encoder={{type: inception_v3, weights_path: {weights}}}"]


def test_a_released_code_config_trains_inception_v3_with_the_backbone(public_inputs, tmp_path):
    config = resolve_config(public_argv(public_inputs, tmp_path / "run", public_inputs["weights"]))
    train_set = build_dataset(config, "train")
    objective, train_set, _ = build_objective(config, build_model(config, None), train_set)
    encoder = objective.rgb_encoder
    with Image.open(public_inputs["strips"] / "S001C001P001R001A001.jpg") as strip:
        public = transforms.Compose([transforms.Resize(299), transforms.ToTensor(),
                                     transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
        expected = public(strip.convert("RGB"))
        assert expected.shape == (3, 299, 598)  # shorter side 299, aspect kept
        torch.testing.assert_close(encoder.preprocess(strip), expected)
    assert encoder.net.transform_input and objective.frm.phi[0].in_features == 3
    optimizer = build_optimizer([p for p in objective.parameters() if p.requires_grad], config)
    assert any(p is encoder.net.Conv2d_1a_3x3.conv.weight for group in optimizer.param_groups for p in group["params"])
    before = {name: p.detach().clone() for name, p in encoder.named_parameters()}
    step, stats = train_one_epoch(objective, train_loader(train_set, config, Runtime(torch.device("cpu")), 0),
                                  optimizer, torch.amp.GradScaler("cpu", enabled=False), config,
                                  Runtime(torch.device("cpu")), 0, 0, RunLog(tmp_path, enabled=False))
    assert step == 1 and encoder.training and np.isfinite(stats["loss_align"]) and np.isfinite(stats["loss_refine"])
    changed = [name for name, p in encoder.named_parameters() if not torch.equal(before[name], p)]
    assert "net.fc.weight" in changed and "net.Conv2d_1a_3x3.conv.weight" in changed  # trained end to end
    # a checkpoint of the public model (its own key names, Inception-V3's auxiliary head included) loads whole
    theirs = {"inception_v3.": "rgb_encoder.net.", "FAM_Aligh.mlp.": "fam.mlp.", "mlp.": "frm.phi.", "": "backbone."}
    public = {"PosMatrix": objective.frm.pos.detach(), "NegMatrix": objective.frm.neg.detach(),
              "inception_v3.AuxLogits.fc.weight": torch.zeros(1000, 768)}
    for key, value in objective.state_dict().items():
        if key not in ("frm.pos", "frm.neg"):
            prefix = next(p for p in theirs if key.startswith(theirs[p]))
            public[prefix + key.removeprefix(theirs[prefix])] = value
    torch.save(public, tmp_path / "public.pt")
    assert f"{len(public) - 1} keys mapped, 1 ignored" in initialise_from_weights(objective, tmp_path / "public.pt", [])


def test_a_missing_inception_weights_file_is_one_line_naming_it(public_inputs, tmp_path, capsys):
    missing = tmp_path / "pretrained" / INCEPTION_FILE
    assert main_mmcl.main(public_argv(public_inputs, tmp_path / "run", missing)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0] and "IMAGENET1K_V1" in err[0], err
    assert not (tmp_path / "run").exists()
