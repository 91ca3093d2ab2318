"""The demo driver's caches: feature stores are remade exactly when what they were made from changes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import run_demo


@pytest.fixture
def demo_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Point the driver at a fake demo (manifest and pretraining report) and record the commands it runs."""
    data, clip = tmp_path / "demo", tmp_path / "clip"
    data.mkdir()
    clip.mkdir()
    (data / "demo.json").write_text(json.dumps({"version": 2, "args": {"seed": 0}}))
    (clip / "report.json").write_text(json.dumps({"args": {"epochs": 8}}))
    monkeypatch.setattr(run_demo, "DATA", data)
    monkeypatch.setattr(run_demo, "CLIP_DIR", clip)
    monkeypatch.setattr(run_demo, "FEATURES", data / "features")
    ran: list[str] = []

    def fake_step(title: str, command: str, entry, argv: list[str]) -> None:
        out = Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True)
        (out / "meta.json").write_text("{}")
        ran.append(command)

    monkeypatch.setattr(run_demo, "step", fake_step)
    return ran


def test_feature_stores_are_reused_until_their_inputs_change(demo_dirs: list[str]) -> None:
    stores = run_demo.feature_stores("pretrained")
    assert demo_dirs == ["python -m llm_features.extract_rgb_features", "python -m llm_features.encode_answers"]
    assert all((path / "meta.json").is_file() for path in stores.values())

    assert run_demo.feature_stores("pretrained") == stores and len(demo_dirs) == 2  # up to date: reused

    (run_demo.CLIP_DIR / "report.json").write_text(json.dumps({"args": {"epochs": 9}}))  # towers retrained
    run_demo.feature_stores("pretrained")
    assert len(demo_dirs) == 4
    run_demo.feature_stores("random")  # random towers: independent of the pretraining
    (run_demo.CLIP_DIR / "report.json").write_text(json.dumps({"args": {"epochs": 10}}))
    run_demo.feature_stores("random")
    assert len(demo_dirs) == 6

    (run_demo.DATA / "demo.json").write_text(json.dumps({"version": 3, "args": {"seed": 0}}))  # data regenerated
    run_demo.feature_stores("random")
    assert len(demo_dirs) == 8
