"""MMCL through the command line: cached and online RGB, text refinement, export, skeleton-only test."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import main_mmcl
from engine.errors import InputError
from engine.refine import load_refinement, refinement_state
from feeders.feature_store import write_feature_store
from model.ctrgcn import Model
from model.frm import FeatureRefinement
from tests.conftest import NUM_CLASS
from tools.export_skeleton import main as export_main


def _names(dataset_dir: Path, split: str = "train") -> list[str]:
    return (dataset_dir / f"{split}_names.txt").read_text().splitlines()


@pytest.fixture(scope="module")
def stores(dataset_dir, tmp_path_factory) -> dict[str, Path]:
    """RGB and text stores for the tiny dataset's training split, rows deliberately in another order."""
    root = tmp_path_factory.mktemp("stores")
    names = _names(dataset_dir)[::-1]
    rng = np.random.default_rng(0)
    write_feature_store(root / "rgb", rng.standard_normal((len(names), 10)).astype(np.float32), names,
                        {"kind": "rgb"})
    write_feature_store(root / "text", rng.standard_normal((len(names), 6)).astype(np.float16), names,
                        {"kind": "text"}, answers=[{"name": n, "answer": "yes"} for n in names])
    return {"rgb": root / "rgb", "text": root / "text"}


def _train(config: Path, *extra) -> int:
    return main_mmcl.main(["--config", str(config), *map(str, extra)])


def test_mmcl_trains_logs_every_term_and_exports_a_plain_backbone(tmp_path, make_config, stores, capsys):
    config = make_config(tmp_path, mmcl={"fam": True, "frm": True, "rgb_features": str(stores["rgb"]),
                                         "text_features": str(stores["text"])})
    assert _train(config) == 0
    work = tmp_path / "run"
    log = (work / "log.txt").read_text()
    assert "RGB: cached features" in log and "text: features" in log
    for term in ("loss_ce", "loss_refine", "loss_align"):
        assert term in log
    checkpoint = torch.load(work / "last.pt", weights_only=True)
    assert any(k.startswith("fam.mlp.") for k in checkpoint["model"])
    assert any(k.startswith("frm.phi.") for k in checkpoint["model"])

    exported = tmp_path / "skeleton.pt"
    assert export_main(["--checkpoint", str(work / "last.pt"), "--out", str(exported)]) == 0
    plain = Model(num_class=NUM_CLASS, num_point=25, num_person=2, graph="graph.ntu_rgb_d.Graph", base_channel=8)
    plain.load_state_dict(torch.load(exported, weights_only=True), strict=True)

    # The test phase builds no RGB / text parts: the stores can be gone.
    capsys.readouterr()
    assert _train(config, "--phase", "test", "--weights", exported, "--mmcl", "rgb_features=/gone",
                  "text_features=/gone") == 0
    scores = np.load(work / "test_skeleton_score.npz")
    assert scores["scores"].shape == (12, NUM_CLASS)
    results = json.loads((work / "results.json").read_text())
    assert f"top-1 {100 * results['last']['top1']:.2f}%" in capsys.readouterr().out


def test_online_rgb_through_a_frozen_clip_tower(tmp_path, make_config, dataset_dir):
    strips = tmp_path / "strips"
    strips.mkdir()
    rng = np.random.default_rng(0)
    for name in _names(dataset_dir):
        Image.fromarray(rng.integers(0, 255, (16, 80, 3), dtype=np.uint8)).save(strips / f"{name}.jpg")
    encoder = {"type": "open_clip", "model_name": "ViT-S-32", "pretrained": None, "image_size": 32}
    config = make_config(tmp_path, num_epoch=1, mmcl={"fam": True, "rgb_images": str(strips), "rgb_encoder": encoder})
    assert _train(config) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "RGB: strips" in log and "'layout': 'panels'" in log and "loss_align" in log  # panels by default
    checkpoint = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert not any("visual" in key for key in checkpoint["model"])  # the frozen tower is never saved


@pytest.mark.parametrize("mmcl, expected", [
    ({"fam": True}, "neither mmcl.rgb_features nor mmcl.rgb_images is set"),
    ({"frm": True, "text_features": "/nowhere"}, "text feature store /nowhere: missing features.npy"),
    ({"lambda": 1}, "unknown config key 'mmcl.lambda'"),
    ({"frm": True, "text_features": ["/a", "/b"], "text_combine": "sum"},
     "mmcl.text_combine: expected one of concat, mean, got 'sum'"),
    ({"frm": True, "text_features": {"a": 1}}, "mmcl.text_features: expected a store folder or a list of them"),
])
def test_bad_mmcl_settings(tmp_path, make_config, capsys, mmcl, expected):
    assert _train(make_config(tmp_path, mmcl=mmcl)) == 2
    assert expected in capsys.readouterr().err


def test_store_missing_training_samples_is_one_error(tmp_path, make_config, dataset_dir, capsys):
    names = _names(dataset_dir)[:5]
    write_feature_store(tmp_path / "few", np.zeros((5, 4), np.float32), names, {"kind": "text"})
    assert _train(make_config(tmp_path, mmcl={"frm": True, "text_features": str(tmp_path / "few")})) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "19 of 24 samples have no features" in err


def test_test_phase_refines_with_the_checkpoints_frm(tmp_path, make_config, stores, dataset_dir, capsys):
    """``--refine-text-features``: S_M as always, plus S_R from the checkpoint's FRM and the test samples' text."""
    config = make_config(tmp_path, num_epoch=1, mmcl={"frm": True, "text_features": str(stores["text"])})
    assert _train(config) == 0
    work = tmp_path / "run"
    checkpoint = torch.load(work / "last.pt", weights_only=True)
    generator = torch.Generator().manual_seed(0)
    for key in ("frm.pos", "frm.neg"):  # make the refinement far from the identity it starts as
        checkpoint["model"][key] = torch.rand(NUM_CLASS, generator=generator) * 2
    torch.save(checkpoint, tmp_path / "refiner.pt")
    test_names = _names(dataset_dir, "test")
    text = np.random.default_rng(1).standard_normal((len(test_names), 6)).astype(np.float32)
    write_feature_store(tmp_path / "text_test", text, test_names, {"kind": "text"})

    argv = ["--phase", "test", "--weights", tmp_path / "refiner.pt", "--refine-text-features", tmp_path / "text_test"]
    assert _train(config, *argv) == 0
    plain = np.load(work / "test_refiner_score.npz")
    refined = np.load(work / "test_refiner_refine_score.npz")
    assert list(refined["names"]) == list(plain["names"]) == test_names
    frm = FeatureRefinement(6, NUM_CLASS)
    frm.load_state_dict({k.removeprefix("frm."): v for k, v in checkpoint["model"].items() if k.startswith("frm.")})
    with torch.no_grad():
        expected = frm(torch.from_numpy(plain["scores"]), torch.from_numpy(text)).numpy()
    np.testing.assert_allclose(refined["scores"], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(refined["scores"], plain["scores"])
    assert "test_refiner_refine: 12 samples" in capsys.readouterr().out

    baseline = make_config(tmp_path / "baseline", num_epoch=1)
    assert _train(baseline) == 0
    argv = ["--phase", "test", "--weights", tmp_path / "baseline" / "run" / "last.pt",
            "--refine-text-features", tmp_path / "text_test"]  # fmt: skip
    assert _train(baseline, *argv) == 2
    assert "holds no FRM weights" in capsys.readouterr().err


def test_refinement_state_of_a_public_mmcl_checkpoint():
    public = {"l1.gcn1.PA": torch.zeros(3, 25, 25), "mlp.0.weight": torch.ones(64, 3), "mlp.0.bias": torch.zeros(64),
              "mlp.2.weight": torch.ones(2, 64), "mlp.2.bias": torch.zeros(2),
              "PosMatrix": torch.full((5,), 2.0), "NegMatrix": torch.full((5,), 0.5)}  # fmt: skip
    frm = load_refinement(public, "public.pt", num_class=5)
    assert frm.phi[0].in_features == 3 and torch.equal(frm.pos, torch.full((5,), 2.0))
    with pytest.raises(InputError, match="plain.pt: holds no FRM weights"):
        refinement_state({"l1.gcn1.PA": torch.zeros(3, 25, 25)}, "plain.pt")
