"""Own skeletons (docs/custom_skeletons.md): edge-list graphs, the COCO layout, 2D input with keypoint scores,
bones from the graph, pyskl's 2D annotation pickles, and training and testing on them end to end."""
from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import main_mmcl
from engine.errors import InputError
from feeders.bone_pairs import bone_pairs
from feeders.ntu import ROTATION_THETA, NTUFeeder
from feeders.prepared import write_meta, write_prepared_split
from feeders.skeleton_store import open_split
from feeders.transforms import random_rotation, sample_rng, to_bone, to_motion
from model.registry import build_backbone
from tests.fuzzing import fuzz_reader
from tools import prepare_pyskl

ROOT = Path(__file__).resolve().parents[1]
#: A five-joint star: a centre with two limbs of two joints.
FIVE = {"num_node": 5, "edges": [[0, 1], [1, 2], [0, 3], [3, 4]], "center": 0}


def _run(argv: list) -> int:
    return main_mmcl.main([str(a) for a in argv])


# ------------------------------------------------------------------------------------- 2D transforms
def test_2d_rotation_turns_x_y_in_the_image_plane_and_keeps_the_score():
    x = np.random.default_rng(0).normal(size=(3, 8, 5, 2)).astype(np.float32)
    angle = np.random.default_rng(4).uniform(-0.3, 0.3)
    c, s = math.cos(angle), math.sin(angle)
    expected = np.einsum("ij,jtvm->itvm", np.array([[c, s], [-s, c]]), x[:2].astype(np.float64))
    rotated = random_rotation(x[:2], 0.3, np.random.default_rng(4))
    np.testing.assert_allclose(rotated, expected, atol=1e-6)
    with_score = random_rotation(x, 0.3, np.random.default_rng(4), score=True)
    np.testing.assert_array_equal(with_score[:2], rotated)
    np.testing.assert_array_equal(with_score[2], x[2])
    assert with_score.dtype == np.float32
    pairs = bone_pairs(FIVE)
    np.testing.assert_allclose(*(np.linalg.norm(to_bone(y, pairs), axis=0) for y in (rotated, x[:2])), atol=1e-5)
    with pytest.raises(ValueError, match="2 or 3 coordinates per joint, got 1"):
        random_rotation(x[:2], 0.3, np.random.default_rng(4), score=True)


def test_bones_and_motion_average_the_score_as_pyskl():
    x = np.random.default_rng(1).uniform(size=(3, 4, 5, 1)).astype(np.float32)  # x, y, score
    pairs = bone_pairs(FIVE)  # 1 -> 0, 2 -> 1, 3 -> 0, 4 -> 3; 0 its own parent
    bones = to_bone(x, pairs, score=True)
    np.testing.assert_array_equal(bones[:2, :, 2], x[:2, :, 2] - x[:2, :, 1])
    np.testing.assert_allclose(bones[2, :, 2], (x[2, :, 2] + x[2, :, 1]) / 2)
    np.testing.assert_array_equal(bones[:2, :, 0], 0)
    np.testing.assert_array_equal(bones[2, :, 0], x[2, :, 0])
    motion = to_motion(x, score=True)
    np.testing.assert_array_equal(motion[:2, :3], x[:2, 1:] - x[:2, :3])
    np.testing.assert_allclose(motion[2, :3], (x[2, 1:] + x[2, :3]) / 2)
    assert not motion[:, 3].any()
    np.testing.assert_array_equal(to_bone(x, pairs)[2, :, 2], x[2, :, 2] - x[2, :, 1])  # no score: all differenced


# ------------------------------------------------------------------------------------- feeder on 2D data
def _write_2d(root: Path, channels: list[str] | None, graph=FIVE, n: int = 6, frames: int = 20) -> np.ndarray:
    rng = np.random.default_rng(2)
    data = np.zeros((n, len(channels or "xy"), frames, 5, 2), np.float32)
    data[:, :, :16, :, 0] = rng.uniform(0.1, 1.0, size=(n, data.shape[1], 16, 5))
    labels = np.arange(n) % 3
    for split in ("train", "test"):
        write_prepared_split(root, split, data, labels, [f"s{i}" for i in range(n)])
    write_meta(root, "five", 3, graph, {"train": n, "test": n}, channels)
    return data


def test_feeder_rotates_2d_coordinates_and_averages_scores(tmp_path):
    _write_2d(tmp_path, ["x", "y", "score"])
    args = {"data_path": str(tmp_path), "window_size": 16, "p_interval": [1.0], "seed": 3}
    joint = NTUFeeder(**args)[1][0]
    rotated = NTUFeeder(**args, random_rot=True)[1][0]
    expected = random_rotation(joint, ROTATION_THETA, sample_rng(3, 0, 1), score=True)
    np.testing.assert_allclose(rotated, expected, atol=1e-6)
    np.testing.assert_array_equal(rotated[2], joint[2])
    pairs = bone_pairs(FIVE)
    np.testing.assert_array_equal(NTUFeeder(**args, bone=True, vel=True)[1][0],
                                  to_motion(to_bone(joint, pairs, True), True))


def test_feeder_checks_the_channels_it_is_told(tmp_path):
    _write_2d(tmp_path, None)  # no channels: C = 2 is x, y
    assert NTUFeeder(str(tmp_path), random_rot=True)[0][0].shape == (2, 64, 5, 2)
    meta = tmp_path / "meta.json"
    for channels, message in ((["x", "y", "z"], r"does not describe the data's 2 channels \(allowed: \['x', 'y'\]\)"),
                              (["x", "score"], r"\['x', 'score'\] does not describe")):
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "channels": channels}))
        with pytest.raises(InputError, match=rf"meta\.json: 'channels' .*{message}"):
            NTUFeeder(str(tmp_path))
    write_prepared_split(tmp_path / "d", "train", np.ones((1, 4, 8, 5, 2), np.float32), [0], ["s"])
    with pytest.raises(InputError, match="random_rot needs 2 or 3 coordinates per joint, the data has 4"):
        NTUFeeder(str(tmp_path / "d"), random_rot=True)


# ------------------------------------------------------------------------------------- backbones with C = 2
@pytest.mark.parametrize("name", ["ctrgcn", "tdgcn"])
def test_backbones_take_two_channels_on_an_edge_list_graph(name):
    model = build_backbone(name, {"num_class": 3, "num_point": 5, "graph": "edges", "graph_args": FIVE,
                                  "in_channels": 2, "base_channel": 8})
    assert model.data_bn.num_features == 2 * 5 * 2
    model(torch.randn(2, 2, 12, 5, 2)).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_hdgcn_on_the_coco_hierarchy_with_x_y_score():
    model = build_backbone("hdgcn", {"num_class": 3, "num_point": 17, "graph": "graph.coco_hierarchy.Graph",
                                     "in_channels": 3, "base_channel": 8})
    model(torch.randn(2, 3, 12, 17, 2)).sum().backward()
    model.eval()
    assert model(torch.randn(1, 3, 12, 17, 2)).shape == (1, 3)


# ------------------------------------------------------------------------------------- pyskl 2D pickles
def coco_pickle(path: Path, n: int = 9, bad: tuple[int, ...] = ()) -> dict[str, dict]:
    """A pyskl 2D file: COCO keypoints in 1920 x 1080 pixels with scores, 1 to 3 persons, class-dependent waves;
    samples ``bad`` hold a NaN. Two thirds train, the rest val, of protocol xsub."""
    rng = np.random.default_rng(5)
    annotations = []
    for i in range(n):
        label, persons, frames = i % 3, 1 + i % 3, int(rng.integers(14, 25))
        wave = 80 * np.sin((label + 1) * np.linspace(0, 2 * np.pi, frames))[None, :, None, None]
        keypoint = rng.uniform(300, 1500, size=(persons, 1, 17, 2)) + wave + rng.normal(size=(persons, frames, 17, 2))
        keypoint = keypoint.astype(np.float32)
        if i in bad:
            keypoint[0, 3, 7, 1] = np.nan
        score = rng.uniform(0.2, 1.0, size=(persons, frames, 17)).astype(np.float16)
        annotations.append({"frame_dir": f"S001C001P{i:03d}R001A{label + 1:03d}", "label": label,
                            "keypoint": keypoint, "keypoint_score": score, "total_frames": frames,
                            "img_shape": (1080, 1920), "original_shape": (1080, 1920)})  # fmt: skip
    names = [entry["frame_dir"] for entry in annotations]
    train = 2 * n // 3
    path.write_bytes(pickle.dumps({"split": {"xsub_train": names[:train], "xsub_val": names[train:]},
                                   "annotations": annotations}, protocol=4))  # fmt: skip
    return {entry["frame_dir"]: entry for entry in annotations}


def test_pyskl_2d_file_is_normalised_scored_and_skips_non_finite_samples(tmp_path, capsys):
    entries = coco_pickle(tmp_path / "hrnet.pkl", bad=(4,))
    assert prepare_pyskl.main(["--pickle", str(tmp_path / "hrnet.pkl"), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    bad = "S001C001P004R001A002"
    assert f"skipped {bad}: " in err and "1 non-finite coordinate(s)" in err and "first at frame 4, joint 8" in err
    assert "1 skipped (see" in out and "sample(s) had more than 2 persons: kept the first 2" in out
    assert (tmp_path / "out" / "prepare_log.txt").read_text().splitlines()[1].startswith(f"{bad}\t")
    train = open_split(tmp_path / "out" / "xsub", "train")
    assert bad not in train.names and len(train.names) == 5 and train.num_class == 3
    assert train.graph == "coco" and train.channels == ("x", "y", "score")
    longest = max(entry["total_frames"] for entry in entries.values())
    assert train.shape == (5, 3, longest, 17, 2)
    three = "S001C001P002R001A003"  # three persons: the first two are kept
    row, entry = train.data[train.names.index(three)], entries[three]
    frames = entry["total_frames"]
    half = np.array([960.0, 540.0])
    expected = (entry["keypoint"][:2] - half) / half
    np.testing.assert_allclose(row[:2, :frames], expected.transpose(3, 1, 2, 0), atol=1e-6)
    np.testing.assert_array_equal(row[2, :frames], entry["keypoint_score"][:2].astype(np.float32).transpose(1, 2, 0))
    assert not row[:, frames:].any()
    one = train.data[train.names.index("S001C001P000R001A001")]
    assert not one[..., 1].any()  # the absent second person stays zero
    meta = json.loads((tmp_path / "out" / "xsub" / "meta.json").read_text())
    assert meta["channels"] == ["x", "y", "score"] and meta["graph"] == "coco"


def test_pyskl_2d_options_and_faults(tmp_path):
    entries = coco_pickle(tmp_path / "hrnet.pkl", n=3, bad=(1,))
    prepare_pyskl.prepare(tmp_path / "hrnet.pkl", tmp_path / "pixels", centred=False, score=False)
    raw = open_split(tmp_path / "pixels" / "xsub", "train")
    assert raw.channels == ("x", "y") and raw.shape[1] == 2
    first = entries["S001C001P000R001A001"]
    frames = first["total_frames"]
    np.testing.assert_array_equal(raw.data[0][:, :frames, :, 0], first["keypoint"][0].transpose(2, 0, 1))
    with pytest.raises(InputError, match=r"--strict: 1 skipped, first S001C001P001R001A002: .*non-finite"):
        prepare_pyskl.prepare(tmp_path / "hrnet.pkl", tmp_path / "strict", strict=True)
    assert not (tmp_path / "strict").exists()

    def rewrite(change) -> Path:
        content = pickle.loads((tmp_path / "hrnet.pkl").read_bytes())  # our own file, written above
        change(content["annotations"][0])
        (tmp_path / "changed.pkl").write_bytes(pickle.dumps(content))
        return tmp_path / "changed.pkl"

    faults = [
        (lambda entry: entry.pop("img_shape"), r"'S001C001P000R001A001' has no 'img_shape' \(height, width\)"),
        (lambda entry: entry.update(img_shape=(0, 1920)), r"img_shape must be \(height, width\) in pixels"),
        (lambda entry: entry.pop("keypoint_score"), r"needs a numeric 'keypoint_score' of shape \(1, \d+, 17\)"),
        (lambda entry: entry.update(keypoint=np.zeros((1, 5, 17, 4))),
         r"keypoint must be \(M<=2, T, 25, 3\) or \(M, T, 17, 2\), got \(1, 5, 17, 4\)"),
        (lambda entry: [entry.pop("keypoint"), entry.update(raw_file="kpfiles/part_0.pkl")],
         "'raw_file', as pyskl's Kinetics-400"),
    ]
    for change, message in faults:
        with pytest.raises(InputError, match=message):
            prepare_pyskl.prepare(rewrite(change), tmp_path / "faulty")
    content = pickle.loads((tmp_path / "hrnet.pkl").read_bytes())
    content["annotations"][2]["keypoint"] = np.zeros((1, 4, 25, 3), np.float32)  # a 3D sample in a 2D file
    (tmp_path / "mixed.pkl").write_bytes(pickle.dumps(content))
    with pytest.raises(InputError, match=r"'S001C001P002R001A003' keypoint must be \(M, T, 17, 2\), got \(1, 4, 25"):
        prepare_pyskl.prepare(tmp_path / "mixed.pkl", tmp_path / "faulty")
    assert not (tmp_path / "faulty").exists()


def test_corrupt_2d_pickles_are_read_or_refused_in_one_line(tmp_path):
    coco_pickle(tmp_path / "source.pkl", n=3)
    fuzz_reader(tmp_path / "ntu60_hrnet.pkl", (tmp_path / "source.pkl").read_bytes(), prepare_pyskl.read_annotations,
                seed=11)


# ------------------------------------------------------------------------------------- end to end
def _short(work: Path, data: Path) -> list:
    """Overrides that make a run tiny: one epoch of 16-frame windows on ``data``, 8 base channels."""
    return ["--work-dir", work, "--num-epoch", 1, "--warm-up-epoch", 0, "--batch-size", 4, "--test-batch-size", 4,
            "--num-worker", 0, "--save-epoch", 1, "--train-feeder-args", f"data_path={data}", "window_size=16",
            "--test-feeder-args", f"data_path={data}", "window_size=16", "--model-args", "base_channel=8",
            "num_class=3", "--plots", "false"]


@pytest.mark.slow  # two runs of the command line
def test_coco_2d_pickle_trains_and_tests_with_the_example_config(tmp_path):
    coco_pickle(tmp_path / "ntu60_hrnet.pkl", n=12, bad=(5,))
    prepare_pyskl.prepare(tmp_path / "ntu60_hrnet.pkl", tmp_path / "data")
    config = ROOT / "config" / "custom" / "baseline_coco2d_joint.yaml"
    work = tmp_path / "run"
    assert _run(["--config", config, *_short(work, tmp_path / "data" / "xsub")]) == 0
    assert _run(["--config", config, *_short(work, tmp_path / "data" / "xsub"), "--phase", "test",
                 "--weights", work / "last.pt"]) == 0  # fmt: skip
    scores = np.load(work / "test_last_score.npz")
    assert scores["scores"].shape == (4, 3) and np.isfinite(scores["scores"]).all()
    state = torch.load(work / "last.pt", weights_only=True)["model"]
    assert state["backbone.data_bn.weight"].shape == (2 * 17 * 3,)


def test_edge_list_graph_with_two_channels_trains_the_bone_stream(tmp_path, make_config):
    _write_2d(tmp_path / "data", ["x", "y"], n=8)
    feeder = {"bone": True, "window_size": 16}
    config = make_config(
        tmp_path, num_epoch=1, batch_size=4, plots=False,
        train_feeder_args={"data_path": str(tmp_path / "data"), "split": "train", "random_rot": True, **feeder},
        test_feeder_args={"data_path": str(tmp_path / "data"), "split": "test", "p_interval": [0.95], **feeder},
        model="tdgcn", model_args={"num_class": 3, "num_point": 5, "num_person": 2, "in_channels": 2,
                                   "graph": "edges", "graph_args": FIVE, "base_channel": 8})  # fmt: skip
    assert _run(["--config", config]) == 0
    work = tmp_path / "run"
    assert _run(["--config", config, "--phase", "test", "--weights", work / "last.pt"]) == 0
    assert np.load(work / "test_last_score.npz")["scores"].shape == (8, 3)
    assert "graph_args" in (work / "config.yaml").read_text()
