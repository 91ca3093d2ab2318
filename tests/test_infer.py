"""Inference on raw .skeleton files: the same scores as preparing the files and running the test phase."""
from __future__ import annotations

import json

import numpy as np
import pytest

import main_mmcl
from tests.conftest import write_config
from tests.ntu_fixtures import realistic_frames, sample_name, write_skeleton
from tools import infer, prepare_ntu
from tools.export_skeleton import main as export_main


@pytest.fixture(scope="module")
def trained(dataset_dir, tmp_path_factory):
    """A tiny 3-class model trained for one epoch; its last.pt stores the config."""
    folder = tmp_path_factory.mktemp("infer")
    config = write_config(folder, dataset_dir, num_epoch=1)
    assert main_mmcl.main(["--config", str(config)]) == 0
    return {"config": config, "weights": folder / "run" / "last.pt", "folder": folder}


def test_infer_matches_prepare_then_test_phase(trained, tmp_path, capsys):
    rng = np.random.default_rng(3)
    skeletons = tmp_path / "skeletons"
    skeletons.mkdir()
    names = [sample_name(performer=1, action=action) for action in (1, 2, 3)]
    for name, (frames, bodies) in zip(names, [(40, 1), (55, 2), (30, 1)]):
        write_skeleton(skeletons / f"{name}.skeleton", realistic_frames(rng, frames, bodies))
    (skeletons / "broken.skeleton").write_text("12\n1\n")
    paths = [str(skeletons / f"{name}.skeleton") for name in names] + [str(skeletons / "broken.skeleton")]

    out = tmp_path / "predictions.jsonl"
    assert infer.main(["--weights", str(trained["weights"]), "--skeletons", *paths, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("error: ") == 1 and "broken.skeleton" in captured.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["name"] for row in rows] == names
    assert all(len(row["top"]) == 3 and row["top"][0]["name"] is None for row in rows)  # 3 classes: no NTU names
    assert all(line.startswith(tuple(names)) for line in captured.out.splitlines() if line.strip())

    # The reference: the real preparation pipeline and the test phase on the same files.
    (tmp_path / "missing.txt").write_text("")
    prepare_ntu.prepare([skeletons], tmp_path / "missing.txt", "ntu60", tmp_path / "ntu60", ["xsub"])
    argv = ["--config", str(trained["config"]), "--phase", "test", "--weights", str(trained["weights"]),
            "--work-dir", str(tmp_path / "reference"),
            "--test-feeder-args", f"data_path={tmp_path / 'ntu60' / 'xsub'}", "split=train"]  # fmt: skip
    assert main_mmcl.main(argv) == 0
    reference = np.load(tmp_path / "reference" / "test_last_score.npz")
    order = [list(reference["names"]).index(name) for name in names]
    logits = reference["scores"][order].astype(np.float64)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    for row, probabilities, row_logits in zip(rows, expected, logits):
        top = row["top"]
        assert [p["class"] for p in top] == np.argsort(-row_logits, kind="stable").tolist()
        np.testing.assert_allclose([p["probability"] for p in top], np.sort(probabilities)[::-1], rtol=1e-4)


def test_infer_needs_a_config_for_bare_weights(trained, tmp_path, capsys):
    bare = tmp_path / "skeleton.pt"
    assert export_main(["--checkpoint", str(trained["weights"]), "--out", str(bare)]) == 0
    frames = realistic_frames(np.random.default_rng(0), 20, 1)
    skeleton = write_skeleton(tmp_path / f"{sample_name()}.skeleton", frames)
    assert infer.main(["--weights", str(bare), "--skeletons", str(skeleton)]) == 2
    assert "holds no config; pass --config" in capsys.readouterr().err
    argv = ["--weights", str(bare), "--skeletons", str(skeleton), "--config", str(trained["config"]), "--topk", "2"]
    assert infer.main(argv) == 0
    assert capsys.readouterr().out.startswith(sample_name())


def test_top_predictions_name_ntu_classes():
    scores = np.zeros((1, 120))
    scores[0, 22] = 5.0
    (top,) = infer.top_predictions(scores, 2)
    assert top[0]["class"] == 22 and top[0]["name"] == "hand waving" and top[0]["probability"] > 0.5
