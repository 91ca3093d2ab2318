"""Converters of NW-UCLA, UTD-MHAD and pyskl annotations to our prepared format (SYSU: test_prepare_sysu.py)."""
from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

import main_mmcl
from engine.errors import InputError
from feeders.ntu import NTUFeeder
from feeders.skeleton_store import open_split
from feeders.ucla import UCLAFeeder
from model.ctrgcn import Model
from tools import prepare_pyskl, prepare_ucla, prepare_utd_mhad
from tools.kinect_v1 import JOINT_ORDERS, kinect_to_ntu
from tools.safe_pickle import load_pickle


# ------------------------------------------------------------------------------------------ pyskl
def pyskl_file(path, rng, protocol=4):
    """A small pyskl annotation pickle: 5 samples of 1 or 2 persons, two protocols."""
    annotations = []
    for i, (persons, frames) in enumerate([(1, 7), (2, 5), (1, 9), (2, 3), (1, 4)]):
        keypoint = rng.normal(size=(persons, frames, 25, 3)).astype(np.float32) + 1.0
        annotations.append({"frame_dir": f"S001C001P00{i}R001A00{i}", "label": np.int64(i * 2),
                            "keypoint": keypoint, "total_frames": frames})  # fmt: skip
    names = [entry["frame_dir"] for entry in annotations]
    content = {"split": {"xsub_train": names[:3], "xsub_val": names[3:], "xview_train": names[1:], "xview_val": names[:1]},
               "annotations": annotations}  # fmt: skip
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    return {entry["frame_dir"]: entry for entry in annotations}


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pyskl_conversion_values(tmp_path, protocol):
    entries = pyskl_file(tmp_path / "anno.pkl", np.random.default_rng(protocol), protocol)
    argv = ["--pickle", str(tmp_path / "anno.pkl"), "--out", str(tmp_path / "out"), "--no-centre"]
    assert prepare_pyskl.main(argv) == 0
    train = open_split(tmp_path / "out" / "xsub", "train")
    test = open_split(tmp_path / "out" / "xview", "test")
    assert train.shape == (3, 3, 9, 25, 2) and test.shape == (1, 3, 9, 25, 2)
    assert train.num_class == 9 and train.graph == "ntu_rgb_d"
    assert train.names == ["S001C001P000R001A000", "S001C001P001R001A001", "S001C001P002R001A002"]
    np.testing.assert_array_equal(train.labels, [0, 2, 4])
    second = entries["S001C001P001R001A001"]["keypoint"]  # 2 persons, 5 frames
    np.testing.assert_array_equal(train.data[1][:, :5], second.transpose(3, 1, 2, 0))
    assert not np.any(train.data[1][:, 5:]) and not np.any(train.data[0][..., 1])
    assert open_split(tmp_path / "out" / "xsub", "test").names == ["S001C001P003R001A003", "S001C001P004R001A004"]


def test_pyskl_centring_and_total_frames(tmp_path):
    keypoint = np.random.default_rng(1).normal(size=(2, 6, 25, 3)).astype(np.float32)
    keypoint[0, :2] = 0  # person 1 appears at frame 2
    keypoint[1, 4:] = 0  # person 2 leaves at frame 4
    content = {"split": {"xset_train": ["a"], "xset_test": ["a"]},
               "annotations": [{"frame_dir": "a", "label": 3, "keypoint": keypoint, "total_frames": 5}]}  # fmt: skip
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(content))
    prepare_pyskl.prepare(tmp_path / "a.pkl", tmp_path / "out", num_class=60)
    row = open_split(tmp_path / "out" / "xset", "train").data[0]
    assert row.shape == (3, 5, 25, 2)  # cut to total_frames
    origin = keypoint[0, 2, 1]
    np.testing.assert_allclose(row[:, 2:5, :, 0], (keypoint[0, 2:5] - origin).transpose(2, 0, 1), atol=1e-6)
    np.testing.assert_allclose(row[:, :4, :, 1], (keypoint[1, :4] - origin).transpose(2, 0, 1), atol=1e-6)
    assert not np.any(row[:, :2, :, 0]) and not np.any(row[:, 4:, :, 1])
    assert json.loads((tmp_path / "out" / "xset" / "meta.json").read_text())["num_class"] == 60


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_safe_pickle_refuses_foreign_globals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": [_Exploit()]}))
    with pytest.raises(InputError, match=r"evil\.pkl: refused to unpickle global (posix|os|nt)\.system"):
        load_pickle(path)
    assert prepare_pyskl.main(["--pickle", str(path), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "out").exists()
    path.write_bytes(pickle.dumps(np.arange(3))[:-5])
    with pytest.raises(InputError, match="not a readable pickle"):
        load_pickle(path)


def test_pyskl_bad_input_writes_nothing(tmp_path):
    entries = pyskl_file(tmp_path / "anno.pkl", np.random.default_rng(0))
    entries["S001C001P001R001A001"]["keypoint"] = np.zeros((3, 5, 25, 3), np.float32)
    content = {"split": {"xsub_train": list(entries)}, "annotations": list(entries.values())}
    (tmp_path / "anno.pkl").write_bytes(pickle.dumps(content))
    with pytest.raises(InputError, match=r"S001C001P001R001A001.*\(M<=2, T, 25, 3\)"):
        prepare_pyskl.prepare(tmp_path / "anno.pkl", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    content = {"split": {"xsub_train": ["nope"]}, "annotations": []}
    (tmp_path / "anno.pkl").write_bytes(pickle.dumps(content))
    with pytest.raises(InputError, match="'nope', which has no annotation"):
        prepare_pyskl.prepare(tmp_path / "anno.pkl", tmp_path / "out")


# --------------------------------------------------------------------------------- Kinect v1 map
def test_kinect_map_places_joints():
    utd = np.arange(2 * 20 * 3, dtype=np.float64).reshape(2, 20, 3)
    ntu = kinect_to_ntu(utd)
    copies = {1: 4, 2: 3, 4: 1, 21: 2, 5: 5, 20: 20, 22: 8, 23: 8, 24: 12, 25: 12}  # NTU joint <- UTD joint
    for ntu_joint, utd_joint in copies.items():
        np.testing.assert_array_equal(ntu[:, ntu_joint - 1], utd[:, utd_joint - 1])
    np.testing.assert_array_equal(ntu[:, 2], (utd[:, 1] + utd[:, 0]) / 2)  # neck = mid(shoulder centre, head)
    sdk = utd[:, [3, 2, 1, 0, *range(4, 20)]]  # the same skeleton in Kinect SDK order
    np.testing.assert_array_equal(kinect_to_ntu(sdk, "sdk"), ntu)
    assert sorted(JOINT_ORDERS["sdk"]) == list(range(20))


# ------------------------------------------------------------------------------------- UTD-MHAD
def write_utd(folder, rng):
    folder.mkdir()
    skeletons = {}
    for action, subject, frames in [(3, 1, 6), (1, 2, 4), (27, 1, 8), (24, 3, 5)]:
        skel = rng.normal(size=(20, 3, frames))
        scipy.io.savemat(folder / f"a{action}_s{subject}_t1_skeleton.mat", {"d_skel": skel})
        skeletons[f"a{action}_s{subject}_t1"] = skel
    (folder / "readme.txt").write_text("not a skeleton")
    return skeletons


def test_utd_mhad_conversion(tmp_path):
    skeletons = write_utd(tmp_path / "utd", np.random.default_rng(2))
    assert prepare_utd_mhad.main(["--skeletons", str(tmp_path / "utd"), "--out", str(tmp_path / "all")]) == 0
    split = open_split(tmp_path / "all", "test")
    assert split.names == ["a1_s2_t1", "a3_s1_t1", "a24_s3_t1", "a27_s1_t1"]
    np.testing.assert_array_equal(split.labels, [0, 2, 23, 26])
    assert split.shape == (4, 3, 8, 25, 2) and split.num_class == 27
    skel = skeletons["a3_s1_t1"]  # (20, 3, 6)
    sample = split.data[1]
    np.testing.assert_allclose(sample[:, 0, 1, 0], 0, atol=1e-6)  # centred on NTU joint 2 of frame 0
    spine = skel[2, :, 0]
    np.testing.assert_allclose(sample[:, :6, 3, 0], skel[0] - spine[:, None], atol=1e-5)  # NTU4 = head
    np.testing.assert_allclose(sample[:, :6, 2, 0], (skel[0] + skel[1]) / 2 - spine[:, None], atol=1e-5)
    np.testing.assert_allclose(sample[:, :6, 23, 0], skel[11] - spine[:, None], atol=1e-5)  # NTU24 = right hand
    assert not np.any(sample[:, 6:]) and not np.any(split.data[..., 1])

    prepare_utd_mhad.prepare(tmp_path / "utd", tmp_path / "zs", zero_shot=True)
    zero_shot = open_split(tmp_path / "zs", "test")
    assert zero_shot.names == ["a3_s1_t1", "a24_s3_t1", "a27_s1_t1"] and zero_shot.num_class == 120
    np.testing.assert_array_equal(zero_shot.labels, [22, 8, 79])


def test_zero_shot_set_is_evaluated_by_the_test_phase(tmp_path, capsys):
    """The documented zero-shot command: the NTU120 X-Sub joint config, its weights, the converted UTD-MHAD set."""
    write_utd(tmp_path / "utd", np.random.default_rng(5))
    prepare_utd_mhad.prepare(tmp_path / "utd", tmp_path / "zs", zero_shot=True)
    torch.manual_seed(0)
    model = Model(num_class=120, num_point=25, num_person=2, graph="graph.ntu_rgb_d.Graph", base_channel=8).eval()
    torch.save(model.state_dict(), tmp_path / "ntu120_joint.pt")
    config = Path(main_mmcl.__file__).parent / "config" / "nturgbd120-cross-subject" / "joint.yaml"
    argv = ["--config", config, "--phase", "test", "--weights", tmp_path / "ntu120_joint.pt",
            "--work-dir", tmp_path / "eval", "--test-feeder-args", f"data_path={tmp_path / 'zs'}",
            "--model-args", "base_channel=8", "--num-worker", "0"]  # fmt: skip
    assert main_mmcl.main([str(arg) for arg in argv]) == 0
    scores = np.load(tmp_path / "eval" / "test_ntu120_joint_score.npz")
    assert list(scores["names"]) == ["a3_s1_t1", "a24_s3_t1", "a27_s1_t1"]
    np.testing.assert_array_equal(scores["labels"], [22, 8, 79])
    feeder = NTUFeeder(str(tmp_path / "zs"), "test", window_size=64, p_interval=[0.95])
    with torch.no_grad():
        expected = model(torch.stack([torch.as_tensor(feeder[i][0]) for i in range(len(feeder))]))
    np.testing.assert_allclose(scores["scores"], expected.numpy(), rtol=1e-4, atol=1e-5)  # 120 scores per sample
    top5 = np.mean([label in np.argsort(-row)[:5] for row, label in zip(scores["scores"], scores["labels"])])
    assert f"top-5 {100 * top5:.2f}%" in capsys.readouterr().out


def corrupt_mat(path, key, cut):
    """A compressed MATLAB file of ``key``, truncated at half its size (``cut``) or with 4 bytes inverted."""
    scipy.io.savemat(path, {key: np.random.default_rng(9).normal(size=(20, 3, 30))}, do_compression=True)
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    if cut:
        del content[middle:]
    else:
        content[middle : middle + 4] = bytes(255 - byte for byte in content[middle : middle + 4])
    path.write_bytes(bytes(content))


def test_utd_mhad_corrupt_and_nan_files_among_good_ones(tmp_path, capsys):
    folder = tmp_path / "utd"
    write_utd(folder, np.random.default_rng(6))
    corrupt_mat(folder / "a5_s1_t1_skeleton.mat", "d_skel", cut=True)
    corrupt_mat(folder / "a5_s2_t1_skeleton.mat", "d_skel", cut=False)
    skel = np.random.default_rng(7).normal(size=(20, 3, 5))
    skel[[2, 7], 0, 3] = np.nan  # joints 3 and 8 of frame 4
    scipy.io.savemat(folder / "a6_s1_t1_skeleton.mat", {"d_skel": skel})
    scipy.io.savemat(folder / "a28_s1_t1_skeleton.mat", {"d_skel": np.ones((20, 3, 4))})
    assert prepare_utd_mhad.main(["--skeletons", str(folder), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert out.endswith(f"; 4 skipped (see {tmp_path / 'out' / 'prepare_log.txt'})\n")
    assert open_split(tmp_path / "out", "test").names == ["a1_s2_t1", "a3_s1_t1", "a24_s3_t1", "a27_s1_t1"]
    log = (tmp_path / "out" / "prepare_log.txt").read_text().splitlines()
    reasons = dict(line.split("\t") for line in log[1:])
    assert log[0].startswith("# 4 skipped") and list(reasons) == ["a28_s1_t1", "a5_s1_t1", "a5_s2_t1", "a6_s1_t1"]
    assert reasons["a28_s1_t1"].endswith("a28_s1_t1_skeleton.mat: action 28 is outside 1..27")
    for name in ("a5_s1_t1", "a5_s2_t1"):
        assert re.fullmatch(rf".*{name}_skeleton\.mat: not a readable MATLAB file \(.+\)", reasons[name])
    assert reasons["a6_s1_t1"] == (f"{folder / 'a6_s1_t1_skeleton.mat'}: 2 non-finite coordinate(s) (NaN or "
                                   "infinite) in 1 frame(s) and 2 joint(s), first at frame 4, joint 3")  # fmt: skip
    assert err.splitlines() == [f"skipped {name}: {reason}" for name, reason in reasons.items()]


def test_utd_mhad_all_bad_or_strict_writes_nothing(tmp_path):
    (tmp_path / "utd").mkdir()
    scipy.io.savemat(tmp_path / "utd" / "a2_s1_t1_skeleton.mat", {"skel": np.zeros((20, 3, 4))})
    message = r"utd: no usable UTD-MHAD file \(1 skipped, first a2_s1_t1: .*a2_s1_t1_skeleton\.mat: no 'd_skel' variable\)"
    with pytest.raises(InputError, match=message):
        prepare_utd_mhad.prepare(tmp_path / "utd", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    scipy.io.savemat(tmp_path / "utd" / "a1_s1_t1_skeleton.mat", {"d_skel": np.ones((20, 3, 4))})
    with pytest.raises(InputError, match=r"^--strict: 1 skipped, first a2_s1_t1: .*no 'd_skel' variable$"):
        prepare_utd_mhad.prepare(tmp_path / "utd", tmp_path / "out", strict=True)
    assert not (tmp_path / "out").exists()
    assert prepare_utd_mhad.prepare(tmp_path / "utd", tmp_path / "out")[0] == 1


# --------------------------------------------------------------------------------------- NW-UCLA
def write_ucla(folder, rng):
    """Six NW-UCLA JSON files, four of views 1 and 2 (train), two of view 3 (test)."""
    folder.mkdir()
    for i, (action, view, label) in enumerate([(1, 1, 1), (2, 2, 2), (3, 3, 3), (12, 1, 10), (5, 3, 5), (8, 2, 7)]):
        name = f"a{action:02d}_s0{i}_e00_v{view:02d}"
        skeletons = rng.normal(size=(6 + 3 * i, 20, 3)).astype(np.float32)  # float32-exact values
        content = {"file_name": name, "skeletons": skeletons.tolist(), "label": label}
        (folder / f"{name}.json").write_text(json.dumps(content))


def test_ucla_prepared_matches_json_feeder(tmp_path):
    folder = tmp_path / "json"
    write_ucla(folder, np.random.default_rng(4))
    assert prepare_ucla.main(["--json", str(folder), "--out", str(tmp_path / "prep")]) == 0
    meta = json.loads((tmp_path / "prep" / "meta.json").read_text())
    assert meta["splits"] == {"train": 4, "test": 2} and meta["graph"] == "ucla"
    for split in ("train", "test"):
        from_json = UCLAFeeder(str(folder), split, window_size=10, seed=3)
        prepared = UCLAFeeder(str(tmp_path / "prep"), split, window_size=10, seed=3)
        assert prepared.sample_name == from_json.sample_name and len(prepared) == len(from_json)
        np.testing.assert_array_equal(prepared.label, from_json.label)
        for index in range(len(prepared)):
            np.testing.assert_array_equal(prepared[index][0], from_json[index][0])


def test_ucla_corrupt_and_nan_files_among_good_ones(tmp_path, capsys):
    folder = tmp_path / "json"
    write_ucla(folder, np.random.default_rng(5))
    good = (folder / "a01_s00_e00_v01.json").read_text()
    (folder / "a01_s07_e00_v01.json").write_text(good[: len(good) // 2])  # truncated
    (folder / "a02_s07_e00_v03.json").write_text(good.replace('"label": 1', '"label": 11'))  # a flipped digit
    skeletons = np.random.default_rng(6).normal(size=(8, 20, 3))
    skeletons[[1, 2, 6], 4, 1] = np.nan  # joint 5 of frames 2, 3, 7
    skeletons[2, 9] = -np.inf  # joint 10 of frame 3
    content = {"file_name": "a03_s08_e00_v02", "skeletons": skeletons.tolist(), "label": 3}
    (folder / "a03_s08_e00_v02.json").write_text(json.dumps(content))  # NaN, -Infinity: Python's JSON
    assert prepare_ucla.main(["--json", str(folder), "--out", str(tmp_path / "prep")]) == 0
    out, err = capsys.readouterr()
    assert out == f"{tmp_path / 'prep'}: train 4, test 2; 3 skipped (see {tmp_path / 'prep' / 'prepare_log.txt'})\n"
    meta = json.loads((tmp_path / "prep" / "meta.json").read_text())
    assert meta["splits"] == {"train": 4, "test": 2}
    assert "a03_s08_e00_v02" not in open_split(tmp_path / "prep", "train").names
    log = (tmp_path / "prep" / "prepare_log.txt").read_text().splitlines()
    reasons = dict(line.split("\t") for line in log[1:])
    assert log[0].startswith("# 3 skipped") and list(reasons) == ["a01_s07_e00_v01", "a02_s07_e00_v03", "a03_s08_e00_v02"]
    assert re.fullmatch(r".*a01_s07_e00_v01\.json: malformed JSON \(.+\)", reasons["a01_s07_e00_v01"])
    assert reasons["a02_s07_e00_v03"].endswith("a02_s07_e00_v03.json: 'label' must be an integer in 1..10, got 11")
    assert reasons["a03_s08_e00_v02"] == (f"{folder / 'a03_s08_e00_v02.json'}: 6 non-finite coordinate(s) (NaN or "
                                          "infinite) in 3 frame(s) and 2 joint(s), first at frame 2, joint 5")  # fmt: skip
    assert err.splitlines() == [f"skipped {name}: {reason}" for name, reason in reasons.items()]


def test_ucla_empty_split_or_strict_writes_nothing(tmp_path):
    folder = tmp_path / "json"
    write_ucla(folder, np.random.default_rng(5))
    for path in folder.glob("*_v03.json"):
        path.write_text(path.read_text()[:-2])
    with pytest.raises(InputError, match=r"json: no usable sample of split 'test' \(2 skipped, first a03_s02_e00_v03: "):
        prepare_ucla.prepare(folder, tmp_path / "prep")
    assert not (tmp_path / "prep").exists()
    (folder / "a04_s09_e00_v03.json").write_text((folder / "a01_s00_e00_v01.json").read_text())
    with pytest.raises(InputError, match=r"^--strict: 2 skipped, first a03_s02_e00_v03: .*malformed JSON"):
        prepare_ucla.prepare(folder, tmp_path / "prep", strict=True)
    assert not (tmp_path / "prep").exists()
