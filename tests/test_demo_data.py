"""Tests of the synthetic multimodal demo dataset: files, skeleton layout, strips, answers, separability, CLI."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import InputError
from feeders.demo_data import (
    DEMO_CLASSES,
    OBJECT_PAIRS,
    QUESTION,
    generate_demo_dataset,
    make_sample,
    read_held_objects,
    render_sample,
)
from feeders.demo_render import CAMERA, OBJECT_STYLES, panel_frames, person_box
from feeders.ntu import NTUFeeder
from tools.make_demo_data import main as make_demo_main

SMALL = {"num_train_per_class": 3, "num_test_per_class": 2, "num_val_per_class": 1, "max_frames": 60, "strip_panels": 4, "panel_size": 64}
NAME = re.compile(r"S001C001P(\d{3})R001A(\d{3})")
NUM_CLASS = len(DEMO_CLASSES)
TWO_PERSON = np.array([spec.persons == 2 for spec in DEMO_CLASSES])
HELD = [spec.held for spec in DEMO_CLASSES]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    generate_demo_dataset(root, **SMALL)
    return root


def load_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    data = np.load(root / f"{split}_data.npy")
    labels = np.load(root / f"{split}_label.npy")
    names = (root / f"{split}_names.txt").read_text(encoding="utf-8").splitlines()
    color = np.load(root / f"{split}_color.npy")
    return data, labels, names, color


def all_files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def object_pixels(strip: np.ndarray, kind: str, tolerance: float = 60.0) -> int:
    colour = np.asarray(OBJECT_STYLES[kind].colour, dtype=float)
    return int((np.linalg.norm(strip.astype(float) - colour, axis=-1) < tolerance).sum())


def test_generation_is_deterministic(demo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_demo_dataset(again, **SMALL)
    first, second = all_files(demo), all_files(again)
    assert first.keys() == second.keys()
    assert all(first[key] == second[key] for key in first)
    no_rgb = tmp_path / "no_rgb"
    generate_demo_dataset(no_rgb, **{**SMALL, "with_rgb": False})
    assert not (no_rgb / "rgb").exists()
    for key, content in all_files(no_rgb).items():
        if key.endswith((".npy", ".txt", ".jsonl")):
            assert content == first[key], key
    other_seed = tmp_path / "seed1"
    generate_demo_dataset(other_seed, **{**SMALL, "seed": 1, "with_rgb": False})
    assert not np.array_equal(np.load(other_seed / "train_data.npy"), np.load(demo / "train_data.npy"))


def test_prepared_files(demo: Path) -> None:
    meta = json.loads((demo / "meta.json").read_text())
    assert meta["num_class"] == NUM_CLASS and meta["graph"] == "ntu_rgb_d"
    assert meta["splits"] == {"train": 3 * NUM_CLASS, "test": 2 * NUM_CLASS, "val": NUM_CLASS}
    assert (demo / "classes.txt").read_text().splitlines() == [spec.name for spec in DEMO_CLASSES]
    performers = {}
    for split, per_class in (("train", 3), ("test", 2), ("val", 1)):
        data, labels, names, color = load_split(demo, split)
        n = per_class * NUM_CLASS
        assert data.shape == (n, 3, 60, 25, 2) and data.dtype == np.float32
        assert labels.shape == (n,) and labels.dtype == np.int64
        assert color.shape == (n, 60, 2, 25, 2) and color.dtype == np.float32
        assert np.bincount(labels, minlength=NUM_CLASS).tolist() == [per_class] * NUM_CLASS
        parsed = [NAME.fullmatch(name) for name in names]
        assert all(parsed) and len(set(names)) == n
        assert [int(m.group(2)) - 1 for m in parsed] == labels.tolist()
        performers[split] = {int(m.group(1)) for m in parsed}
        assert len(performers[split]) == per_class
        assert labels[:NUM_CLASS].tolist() == list(range(NUM_CLASS))  # classes interleaved
    assert not performers["train"] & performers["test"] and not performers["val"] & (performers["train"] | performers["test"])


def test_feeder_names_the_classes_from_classes_txt(demo: Path, tmp_path: Path) -> None:
    assert NTUFeeder(str(demo), split="test").class_names == [spec.name for spec in DEMO_CLASSES]
    short = tmp_path / "short"
    shutil.copytree(demo, short, ignore=shutil.ignore_patterns("rgb"))
    (short / "classes.txt").write_text("drink water\n")
    with pytest.raises(InputError, match="classes.txt: names 1 classes, the dataset has 12"):
        NTUFeeder(str(short), split="test")


def test_padding_centring_and_person_slots(demo: Path) -> None:
    data, labels, _, color = load_split(demo, "train")
    frame_sum = np.abs(data).sum(axis=(1, 3, 4))
    lengths = (frame_sum > 0).sum(axis=1)
    assert lengths.min() >= 24 and lengths.max() <= 60
    for sample, length in enumerate(lengths):
        assert frame_sum[sample, :length].all() and not frame_sum[sample, length:].any()
        assert not color[sample, length:].any() and color[sample, :length, 0].all()
    np.testing.assert_array_equal(data[:, :, 0, 1, 0], 0.0)  # origin: actor 1's middle of spine, frame 0
    two = TWO_PERSON[labels]
    assert not data[~two, ..., 1].any() and not color[~two, :, 1].any()
    for sample in np.flatnonzero(two):
        second = np.abs(data[sample, :, : lengths[sample], :, 1]).sum(axis=(0, 2))
        assert second.all()


def test_skeleton_is_a_plausible_body(demo: Path) -> None:
    data = np.load(demo / "train_data.npy")
    first = data[:, :, 0, :, 0]  # (N, 3, V) first frame, actor 1
    height = first[:, 1, 3] - first[:, 1, [15, 19]].min(axis=1)  # head centre over the lower foot
    assert height.min() > 1.2 and height.max() < 1.9
    thigh = np.linalg.norm(data[:, :, :, 12, 0] - data[:, :, :, 13, 0], axis=1)  # (N, T)
    valid = np.abs(data).sum(axis=(1, 3, 4)) > 0
    for sample in range(len(data)):
        lengths = thigh[sample, valid[sample]]
        assert 0.3 < lengths.mean() < 0.5 and lengths.std() < 0.03


def test_color_is_the_projection_of_the_skeleton(demo: Path) -> None:
    """Pixels = pinhole projection of (stored joints + the unknown centring origin); solve for its depth."""
    data, labels, _, color = load_split(demo, "train")
    f, c = np.array([CAMERA.fx, -CAMERA.fy]), np.array([CAMERA.cx, CAMERA.cy])
    for sample in range(len(data)):
        xyz = data[sample, :, :5].astype(float)  # (3, 5 frames, V, M)
        persons = 2 if TWO_PERSON[labels[sample]] else 1
        points = xyz[..., :persons].transpose(1, 3, 2, 0).reshape(-1, 3)
        pixels = color[sample, :5, :persons].reshape(-1, 2).astype(float)
        ray = (pixels - c) / f  # = (x + o_x, y + o_y) / (z + o_z); the origin (row 1: joint 2, frame 0) is ray[1]
        # (ray - ray[1]) * o_z = (x, y) - ray * z: least squares for the origin's depth o_z
        lhs, rhs = (ray - ray[1]).ravel(), (points[:, :2] - ray * points[:, 2:]).ravel()
        depth = lhs @ rhs / (lhs @ lhs)
        assert 2.5 < depth < 4.5
        origin = np.append(ray[1] * depth, depth)
        projected = c + f * (points[:, :2] + origin[:2]) / (points[:, 2:] + origin[2])
        np.testing.assert_allclose(projected, pixels, atol=0.05)


def test_strips_show_the_held_objects_only(demo: Path) -> None:
    _, labels, names, _ = load_split(demo, "train")
    held_objects = read_held_objects(demo, "train")
    for name, label in zip(names, labels, strict=True):
        strip = np.asarray(Image.open(demo / "rgb" / f"{name}.jpg").convert("RGB"))
        assert strip.shape == (64, 4 * 64, 3)
        counts = {kind: object_pixels(strip, kind) for kind in OBJECT_STYLES}
        held = held_objects[name]
        assert held == HELD[label] or (DEMO_CLASSES[label].incidental and HELD[label] is None)
        if held:
            assert counts[held] >= 15, (name, counts)
        assert all(count <= 2 for kind, count in counts.items() if kind != held), (name, counts)


def test_object_is_drawn_at_the_hand() -> None:
    sample = make_sample(seed=3, split_id=0, label=0, index=0, performer=1, max_frames=80)
    strip = render_sample(sample, strip_panels=3, panel_size=96)
    length = len(sample.joints)
    for panel, frame in enumerate(panel_frames(length, 3)):
        origin, side = person_box(sample.color[frame, :1].astype(float))
        hand = (CAMERA.project(sample.joints[frame, 0, 11]) - origin) * 96 / side
        colour = np.asarray(OBJECT_STYLES["cup"].colour, dtype=float)
        tile = strip[:, panel * 96 : (panel + 1) * 96].astype(float)
        rows, cols = np.nonzero(np.linalg.norm(tile - colour, axis=-1) < 60)
        assert len(rows) > 10
        assert np.hypot(cols.mean() - hand[0], rows.mean() - hand[1]) < 4.0


def test_answers_match_rows(demo: Path) -> None:
    for split in ("train", "val", "test"):
        _, labels, names, _ = load_split(demo, split)
        lines = (demo / "answers" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        assert [record["name"] for record in records] == names
        assert all(record.keys() == {"name", "question", "answer", "held"} for record in records)
        assert all(record["question"] == QUESTION for record in records)
        for record, label in zip(records, labels, strict=True):
            assert record["answer"].startswith("Yes") == (record["held"] is not None)
            if not DEMO_CLASSES[label].incidental:
                assert record["held"] == HELD[label]
    answers = {json.loads(line)["answer"] for line in (demo / "answers" / "train.jsonl").read_text().splitlines()}
    assert len(answers) >= 6


def test_skeleton_separates_classes_and_holds_the_object_pairs_cue(tmp_path: Path) -> None:
    """Whole-body statistics tell most classes apart; each object pair differs by the grip, which a targeted
    feature reads from the skeleton (the cue co-learning can teach), and the answers state the object."""
    generate_demo_dataset(tmp_path, num_train_per_class=30, num_test_per_class=20, num_val_per_class=1,
                          with_rgb=False)

    def features(split: str) -> tuple[np.ndarray, np.ndarray]:
        data, labels, _, _ = load_split(tmp_path, split)
        valid = (np.abs(data).sum(axis=(1, 3, 4)) > 0)[:, None, :, None, None]
        count = valid.sum(axis=2)
        mean = (data * valid).sum(axis=2) / count
        std = np.sqrt((((data - mean[:, :, None]) * valid) ** 2).sum(axis=2) / count)
        return np.concatenate([mean.reshape(len(data), -1), std.reshape(len(data), -1)], axis=1), labels

    def grip(split: str) -> np.ndarray:
        """Mean distance (m) of the right hand tip from the right thumb while the right hand is raised."""
        data = load_split(tmp_path, split)[0][..., 0]
        raised = (data[:, 1, :, 11] > data[:, 1, :, 20] - 0.25) & (np.abs(data).sum(axis=(1, 3)) > 0)
        gap = np.linalg.norm(data[:, :, :, 23] - data[:, :, :, 24], axis=1)
        return (gap * raised).sum(axis=1) / np.maximum(raised.sum(axis=1), 1)

    train_x, train_y = features("train")
    test_x, test_y = features("test")
    centre, scale = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    train_x, test_x = (train_x - centre) / scale, (test_x - centre) / scale
    centroids = np.stack([train_x[train_y == k].mean(axis=0) for k in range(NUM_CLASS)])
    distance = ((test_x[:, None] - centroids[None]) ** 2).sum(axis=-1)
    assert (distance.argmin(axis=1) == test_y).mean() > 0.6  # chance is 1/12

    answers = [json.loads(line)["answer"] for line in (tmp_path / "answers" / "test.jsonl").read_text().splitlines()]
    says_yes = np.array([answer.startswith("Yes") for answer in answers])
    train_grip, test_grip = grip("train"), grip("test")
    class_names = [spec.name for spec in DEMO_CLASSES]
    for with_object, without in OBJECT_PAIRS:
        a, b = class_names.index(with_object), class_names.index(without)
        threshold = (train_grip[train_y == a].mean() + train_grip[train_y == b].mean()) / 2
        rows = np.isin(test_y, [a, b])
        grip_guess = np.where(test_grip[rows] < threshold, a, b)  # a hand around an object is closed
        assert (grip_guess == test_y[rows]).mean() >= 0.9
        text_guess = np.where(says_yes[rows], a, b)
        assert (text_guess == test_y[rows]).all()


def test_incidental_objects_close_the_grip_in_about_half_the_samples() -> None:
    """Classes marked incidental carry an object unrelated to the action in about half of their samples: the
    strip and the answer show it, and the carrying hand is closed, whatever the class."""
    for label in [k for k, spec in enumerate(DEMO_CLASSES) if spec.incidental]:
        samples = [make_sample(0, 0, label, index, index + 1, max_frames=40) for index in range(40)]
        carrying = np.array([sample.held is not None for sample in samples])
        assert 0.3 <= carrying.mean() <= 0.7, DEMO_CLASSES[label].name
        assert all(sample.answer.startswith("Yes") == carried for sample, carried in zip(samples, carrying))
        assert all(len(sample.objects) == carried for sample, carried in zip(samples, carrying))
        gap = np.array([np.linalg.norm(s.joints[:, 0, 23] - s.joints[:, 0, 24], axis=-1).mean() for s in samples])
        assert gap[carrying].max() < gap[~carrying].min()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"num_train_per_class": 0}, "num_train_per_class must be a positive integer"),
        ({"max_frames": 5}, "max_frames must be an integer >= 10"),
        ({"panel_size": 8}, "panel_size must be an integer >= 16"),
        ({"num_test_per_class": 999}, "must be <= 999"),
    ],
)
def test_bad_arguments_raise_input_error(tmp_path: Path, override: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        generate_demo_dataset(tmp_path, **{**SMALL, **override})
    assert not any(tmp_path.iterdir())


def test_command_guards_the_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "demo"
    base = ["--out", str(out), "--train-per-class", "2", "--test-per-class", "1", "--val-per-class", "1",
            "--max-frames", "40"]
    assert make_demo_main([*base, "--panel-size", "32"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and "12 classes, 24 train / 12 val / 12 test" in summary[0]
    assert len(list((out / "rgb").glob("*.jpg"))) == 48
    stamp = (out / "demo.json").stat().st_mtime_ns

    assert make_demo_main([*base, "--panel-size", "32"]) == 0  # same arguments and version: kept as it is
    assert "already holds it" in capsys.readouterr().out and (out / "demo.json").stat().st_mtime_ns == stamp
    manifest = json.loads((out / "demo.json").read_text())
    (out / "demo.json").write_text(json.dumps({**manifest, "version": manifest["version"] - 1}))
    assert make_demo_main([*base, "--panel-size", "32"]) == 2  # made by an older generator version
    assert make_demo_main([*base, "--no-rgb"]) == 2  # different arguments
    assert "--overwrite" in capsys.readouterr().err
    assert len(list((out / "rgb").glob("*.jpg"))) == 48

    smaller = ["--out", str(out), "--train-per-class", "1", "--test-per-class", "1", "--val-per-class", "1",
               "--max-frames", "40"]
    assert make_demo_main([*smaller, "--panel-size", "32", "--overwrite"]) == 0
    assert len(list((out / "rgb").glob("*.jpg"))) == 36  # strips of the earlier, larger run are gone
    assert np.load(out / "train_data.npy").shape[0] == 12

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert make_demo_main(["--out", str(foreign), "--no-rgb"]) == 2
    assert [path.name for path in foreign.iterdir()] == ["notes.txt"]
