"""The demo's pretrained-like encoders: the image-caption corpus, the small CLIP's pretraining command, and its
checkpoint loaded through the encoders' ordinary open_clip path."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from feeders.demo_corpus import OBJECT_PHRASES, make_corpus_item, with_object
from feeders.demo_render import OBJECT_STYLES
from llm_features.text_encoder import FrozenClipTextEncoder
from model.rgb_encoder import FrozenClipImageEncoder
from tools.pretrain_demo_clip import CHECKPOINT, MODEL, REPORT
from tools.pretrain_demo_clip import main as pretrain_main

ACTION_WORDS = ("drink", "phone call", "touch", "throw", "wave", "squat", "jump", "kick", "shake", "push", "hug")
TINY = ["--images", "64", "--eval-images", "16", "--epochs", "2", "--batch-size", "32", "--workers", "1"]


def object_pixels(image: np.ndarray, kind: str) -> int:
    colour = np.asarray(OBJECT_STYLES[kind].colour, dtype=float)
    return int((np.linalg.norm(image.astype(float) - colour, axis=-1) < 60).sum())


def test_corpus_is_deterministic_and_captions_say_what_is_shown() -> None:
    items = [make_corpus_item(seed=5, index=i, size=64) for i in range(40)]
    again = make_corpus_item(seed=5, index=7, size=64)
    assert again.caption == items[7].caption and np.array_equal(again.image, items[7].image)
    assert {item.held for item in items} == set(OBJECT_PHRASES)  # every choice occurs
    for item in items:
        assert item.image.shape == (64, 64, 3) and item.image.dtype == np.uint8
        assert OBJECT_PHRASES[item.held] in item.caption
        assert not any(word in item.caption for word in ACTION_WORDS)
        for kind in OBJECT_STYLES:
            if kind == item.held:
                assert object_pixels(item.image, kind) >= 4, item.caption
            else:
                assert object_pixels(item.image, kind) <= 2, item.caption
        swapped = with_object(item, "cup" if item.held != "cup" else None)
        assert swapped != item.caption and OBJECT_PHRASES[item.held] not in swapped


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clip")
    assert pretrain_main(["--out", str(out), *TINY]) == 0
    return out


def test_pretraining_writes_a_checkpoint_and_a_report(pretrained: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    report = json.loads((pretrained / REPORT).read_text())
    assert report["model"] == MODEL and len(report["loss_per_epoch"]) == 2
    assert all(np.isfinite(report["loss_per_epoch"]))
    for tower in ("pretrained", "random_init"):
        assert set(report["held_out"][tower]) == {"object_top1", "retrieval_r1", "object_chance"}
    state = torch.load(pretrained / CHECKPOINT, weights_only=True)
    assert "visual.conv1.weight" in state and "token_embedding.weight" in state

    capsys.readouterr()
    assert pretrain_main(["--out", str(pretrained), *TINY]) == 0  # same arguments: reused, not retrained
    assert "already pretrained" in capsys.readouterr().out
    assert pretrain_main(["--out", str(pretrained), *TINY[:-2], "--workers", "1", "--seed", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err

    again = tmp_path / "again"
    assert pretrain_main(["--out", str(again), *TINY]) == 0
    second = torch.load(again / CHECKPOINT, weights_only=True)
    assert all(torch.equal(state[key], second[key]) for key in state)  # same arguments, same weights


def test_checkpoint_loads_through_the_encoders(pretrained: Path) -> None:
    path = str(pretrained / CHECKPOINT)
    state = torch.load(path, weights_only=True)
    image = FrozenClipImageEncoder(MODEL, path, layout="panels", panels=5)
    text = FrozenClipTextEncoder(MODEL, path)
    assert torch.equal(image.visual.conv1.weight, state["visual.conv1.weight"])
    assert torch.equal(text.clip.token_embedding.weight, state["token_embedding.weight"])
    assert text.output_dim == state["text_projection"].shape[1] and image.output_dim == 5 * text.output_dim
    strip = torch.rand(2, 5, 3, 64, 64)
    assert image(strip).shape == (2, image.output_dim)
    assert text(["Yes, the person is holding a cup."]).shape == (1, text.output_dim)
