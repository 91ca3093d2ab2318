"""SYSU 3D HOI converter: the release tree (<subject>/video<A>/sklWorld.mat, 'SW' (20, 3, T)) -> prepared format."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import scipy.io

from engine.errors import InputError
from feeders.skeleton_store import open_split
from tools import prepare_sysu
from tools.kinect_v1 import kinect_to_ntu

#: (subject folder, action, frames); frames 1 is saved as MATLAB does, without the frame axis.
SAMPLES = [("BoTong", 1, 5), ("ChengKun", 4, 7), ("BoTong", 3, 6), ("cenjiepeng", 12, 4), ("cenjiepeng", 1, 3),
           ("ChengKun", 1, 1)]  # fmt: skip
#: Rows in action, then subject order.
NAMES = ["BoTong_video1", "ChengKun_video1", "cenjiepeng_video1", "BoTong_video3", "ChengKun_video4",
         "cenjiepeng_video12"]  # fmt: skip


def write_sw(path, sw, compress=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"SW": sw}, do_compression=compress)


def write_release(root, rng):
    """A small release tree under ``root/3DvideoNorm``; returns {name: (T, 20, 3) joints in SDK order}."""
    videos = root / "3DvideoNorm"
    joints = {}
    for subject, action, frames in SAMPLES:
        skeleton = rng.normal(size=(frames, 20, 3))
        folder = videos / subject / f"video{action}"
        sw = skeleton.transpose(1, 2, 0)
        write_sw(folder / "sklWorld.mat", sw[..., 0] if frames == 1 else sw, compress=action % 2 == 0)
        scipy.io.savemat(folder / "sklImage.mat", {"S": rng.uniform(0, 640, size=(20, 2, frames))})
        (folder / "rgb").mkdir()
        joints[f"{subject}_video{action}"] = skeleton
    (videos / "matlabcode").mkdir()
    (videos / "matlabcode" / "readme.m").write_text("% not a subject")
    return joints


def centred_ntu(skeleton):
    ntu = kinect_to_ntu(skeleton, "sdk")
    return (ntu - ntu[0, 1]).transpose(2, 0, 1)  # (3, T, 25), centred on NTU joint 2 of frame 0


def test_release_conversion_values(tmp_path):
    joints = write_release(tmp_path / "SYSU3DAction", np.random.default_rng(3))
    count, skipped = prepare_sysu.prepare(tmp_path / "SYSU3DAction", tmp_path / "all")
    split = open_split(tmp_path / "all", "test")
    assert count == 6 and skipped == {} and split.names == NAMES
    np.testing.assert_array_equal(split.labels, [0, 0, 0, 2, 3, 11])
    assert split.shape == (6, 3, 7, 25, 2) and split.num_class == 12 and split.graph == "ntu_rgb_d"
    for row, name in enumerate(NAMES):
        skeleton = joints[name]
        frames = len(skeleton)
        np.testing.assert_allclose(split.data[row][:, :frames, :, 0], centred_ntu(skeleton), atol=1e-5)
        assert not np.any(split.data[row][:, frames:]) and not np.any(split.data[row][..., 1])
    skeleton = joints["ChengKun_video4"]  # SDK order: 0 hip centre, 1 spine, 2 shoulder centre, 3 head
    np.testing.assert_allclose(split.data[4][:, 0, 1, 0], 0, atol=1e-6)
    np.testing.assert_allclose(split.data[4][:, :, 0, 0], (skeleton[:, 0] - skeleton[0, 1]).T, atol=1e-5)
    np.testing.assert_allclose(split.data[4][:, :, 3, 0], (skeleton[:, 3] - skeleton[0, 1]).T, atol=1e-5)
    assert json.loads((tmp_path / "all" / "meta.json").read_text())["dataset"] == "sysu"
    assert (tmp_path / "all" / "prepare_log.txt").read_text() == "# 0 skipped sample(s): name<TAB>reason\n"

    prepare_sysu.prepare(tmp_path / "SYSU3DAction" / "3DvideoNorm", tmp_path / "direct")  # the folder itself
    np.testing.assert_array_equal(open_split(tmp_path / "direct", "test").data, split.data)


def test_zero_shot_default_and_custom_class_map(tmp_path, capsys):
    write_release(tmp_path / "sysu", np.random.default_rng(4))
    argv = ["--skeletons", str(tmp_path / "sysu"), "--zero-shot"]
    assert prepare_sysu.main([*argv, "--out", str(tmp_path / "zs")]) == 0
    assert "wrote 5 samples" in capsys.readouterr().out
    assert not (tmp_path / "zs" / "prepare_log.txt").read_text().count("\t")  # unmapped actions are not read
    zero_shot = open_split(tmp_path / "zs", "test")
    assert zero_shot.names == NAMES[:5] and zero_shot.num_class == 120
    np.testing.assert_array_equal(zero_shot.labels, [0, 0, 0, 27, 28])
    assert json.loads((tmp_path / "zs" / "meta.json").read_text())["dataset"] == "sysu-zeroshot"

    (tmp_path / "map.json").write_text(json.dumps({"sweeping": 5, "pouring": 119}))
    assert prepare_sysu.main([*argv, "--out", str(tmp_path / "m"), "--class-map", str(tmp_path / "map.json")]) == 0
    mapped = open_split(tmp_path / "m", "test")
    assert mapped.names == ["cenjiepeng_video12"] and mapped.labels.tolist() == [5]

    (tmp_path / "map.json").write_text(json.dumps({"mopping": 3}))
    with pytest.raises(InputError, match=r"no sample of the mapped actions \[11\]"):
        prepare_sysu.prepare(tmp_path / "sysu", tmp_path / "none", zero_shot=True, class_map={"mopping": 3})
    assert not (tmp_path / "none").exists()
    with pytest.raises(SystemExit, match="2"):
        prepare_sysu.main(["--skeletons", str(tmp_path / "sysu"), "--out", str(tmp_path / "x"), "--class-map", "m.json"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"juggling": 5}', "unknown SYSU action 'juggling'"),
        ('{"drinking": 120}', r"class of 'drinking' must be an integer in 0\.\.119, got 120"),
        ('{"drinking": true}', r"class of 'drinking' must be an integer in 0\.\.119, got True"),
        ("[]", "the class map must be a non-empty JSON object"),
        ('{"drinking": 0', "malformed JSON"),
    ],
)
def test_class_map_errors(tmp_path, content, message):
    (tmp_path / "map.json").write_text(content)
    with pytest.raises(InputError, match=rf"map\.json: {message}"):
        prepare_sysu.read_class_map(tmp_path / "map.json")


def truncated(path):
    write_sw(path, np.random.default_rng(0).normal(size=(20, 3, 40)))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flipped(path):
    """A compressed file with 4 bytes of its zlib stream replaced."""
    write_sw(path, np.random.default_rng(1).normal(size=(20, 3, 40)))
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    content[middle : middle + 4] = bytes(255 - byte for byte in content[middle : middle + 4])
    path.write_bytes(bytes(content))


def matlab_v73(path):
    """The 128-byte header of a MATLAB v7.3 (HDF5) file, version 0x0200."""
    path.parent.mkdir(parents=True)
    path.write_bytes(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM" + bytes(400))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (truncated, r"BoTong/video2/sklWorld\.mat: not a readable MATLAB file"),
        (flipped, r"BoTong/video2/sklWorld\.mat: not a readable MATLAB file"),
        (lambda path: (path.parent.mkdir(parents=True), path.write_text("x y z\n1 2 3\n")),
         r"video2/sklWorld\.mat: not a readable MATLAB file"),
        (matlab_v73, r"video2/sklWorld\.mat: MATLAB v7\.3 files are not supported"),
        (lambda path: write_sw(path, np.zeros((20, 3, 0))), r"video2/sklWorld\.mat: 'SW' has no frame"),
        (lambda path: write_sw(path, np.ones((25, 3, 4))), r"video2/sklWorld\.mat: 'SW' has 25 joints, expected 20"),
        (lambda path: write_sw(path, np.ones((20, 2, 4))), r"'SW' must be \(20, 3, T\), got shape \(20, 2, 4\)"),
        (lambda path: write_sw(path, np.full((20, 3, 4), np.nan)),
         r"sklWorld\.mat: 240 non-finite coordinate\(s\) \(NaN or infinite\) in 4 frame\(s\) and 20 joint"),
        (lambda path: (path.parent.mkdir(parents=True), scipy.io.savemat(path, {"S": np.ones((20, 2, 4))})),
         r"video2/sklWorld\.mat: no 'SW' variable"),
        (lambda path: path.parent.mkdir(parents=True), r"BoTong/video2: no sklWorld\.mat"),
        (lambda path: write_sw(path.parents[1] / "video13" / path.name, np.ones((20, 3, 4))),
         r"BoTong/video13/sklWorld\.mat: action 13 is outside 1\.\.12"),
    ],
)  # fmt: skip
def test_bad_release_file_is_skipped(tmp_path, capsys, make, message):
    videos = tmp_path / "SYSU3DAction" / "3DvideoNorm"
    write_sw(videos / "BoTong" / "video1" / "sklWorld.mat", np.ones((20, 3, 4)))
    make(videos / "BoTong" / "video2" / "sklWorld.mat")
    name = "BoTong_video13" if "video13" in message else "BoTong_video2"
    count, skipped = prepare_sysu.prepare(tmp_path / "SYSU3DAction", tmp_path / "out")
    assert count == 1 and list(skipped) == [name] and re.search(message, skipped[name])
    assert "\n" not in skipped[name]
    assert open_split(tmp_path / "out", "test").names == ["BoTong_video1"]
    log = (tmp_path / "out" / "prepare_log.txt").read_text()
    assert log == f"# 1 skipped sample(s): name<TAB>reason\n{name}\t{skipped[name]}\n"
    assert capsys.readouterr().err == f"skipped {name}: {skipped[name]}\n"


def test_corrupt_and_nan_files_among_good_ones_through_main(tmp_path, capsys):
    root = tmp_path / "SYSU3DAction"
    write_release(root, np.random.default_rng(6))
    videos = root / "3DvideoNorm"
    truncated(videos / "ChengKun" / "video2" / "sklWorld.mat")
    flipped(videos / "BoTong" / "video5" / "sklWorld.mat")
    sw = np.random.default_rng(7).normal(size=(20, 3, 6))
    sw[4, :, 1] = np.nan  # joint 5, frame 2
    sw[4, 2, 3] = np.inf  # joint 5, frame 4
    write_sw(videos / "cenjiepeng" / "video7" / "sklWorld.mat", sw)
    assert prepare_sysu.main(["--skeletons", str(root), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert out == f"wrote 6 samples to {tmp_path / 'out' / 'test'}_data.npy; 3 skipped (see {tmp_path / 'out' / 'prepare_log.txt'})\n"
    assert open_split(tmp_path / "out", "test").names == NAMES
    log = (tmp_path / "out" / "prepare_log.txt").read_text().splitlines()
    reasons = dict(line.split("\t") for line in log[1:])
    assert log[0].startswith("# 3 skipped") and list(reasons) == ["BoTong_video5", "ChengKun_video2", "cenjiepeng_video7"]
    assert re.fullmatch(r".*ChengKun/video2/sklWorld\.mat: not a readable MATLAB file .*", reasons["ChengKun_video2"])
    assert re.fullmatch(r".*BoTong/video5/sklWorld\.mat: not a readable MATLAB file .*", reasons["BoTong_video5"])
    assert reasons["cenjiepeng_video7"] == (f"{videos / 'cenjiepeng' / 'video7' / 'sklWorld.mat'}: 4 non-finite "
                                            "coordinate(s) (NaN or infinite) in 2 frame(s) and 1 joint(s), first at "
                                            "frame 2, joint 5")  # fmt: skip
    assert err.splitlines() == [f"skipped {name}: {reason}" for name, reason in reasons.items()]


def test_all_bad_or_strict_writes_nothing(tmp_path, capsys):
    videos = tmp_path / "SYSU3DAction" / "3DvideoNorm"
    truncated(videos / "BoTong" / "video2" / "sklWorld.mat")
    argv = ["--skeletons", str(tmp_path / "SYSU3DAction"), "--out", str(tmp_path / "out")]
    assert prepare_sysu.main(argv) == 2
    skip, error = capsys.readouterr().err.splitlines()
    assert skip.startswith("skipped BoTong_video2: ") and "not a readable MATLAB file" in skip
    assert re.fullmatch(r"error: .*SYSU3DAction: no usable SYSU sample \(1 skipped, first BoTong_video2: .*\)", error)
    assert not (tmp_path / "out").exists()
    write_sw(videos / "BoTong" / "video1" / "sklWorld.mat", np.ones((20, 3, 4)))
    assert prepare_sysu.main([*argv, "--strict"]) == 2
    assert re.fullmatch(r"error: --strict: 1 skipped, first BoTong_video2: .*", capsys.readouterr().err.splitlines()[-1])
    assert not (tmp_path / "out").exists()


def test_bad_layout_errors_through_main(tmp_path, capsys):
    (tmp_path / "empty" / "3DvideoNorm" / "matlabcode").mkdir(parents=True)
    assert prepare_sysu.main(["--skeletons", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"error: .*3DvideoNorm: no SYSU <subject>/video<A>/sklWorld\.mat files\n", err)
    with pytest.raises(InputError, match="missing: not a directory"):
        prepare_sysu.prepare(tmp_path / "missing", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_npy_format(tmp_path):
    rng = np.random.default_rng(5)
    (tmp_path / "npy").mkdir()
    sdk = {}
    for subject, action, frames in [(1, 1, 5), (2, 4, 7), (1, 3, 6), (3, 12, 4)]:
        sdk[(subject, action)] = rng.normal(size=(frames, 20, 3))
        np.save(tmp_path / "npy" / f"s{subject:02d}_a{action:02d}.npy", sdk[(subject, action)])
    argv = ["--skeletons", str(tmp_path / "npy"), "--out", str(tmp_path / "out"), "--format", "npy"]
    assert prepare_sysu.main(argv) == 0
    split = open_split(tmp_path / "out", "test")
    assert split.names == ["s01_a01", "s01_a03", "s02_a04", "s03_a12"]
    np.testing.assert_array_equal(split.labels, [0, 2, 3, 11])
    np.testing.assert_allclose(split.data[2][:, :7, :, 0], centred_ntu(sdk[(2, 4)]), atol=1e-5)
    np.save(tmp_path / "npy" / "s04_a02.npy", np.zeros((0, 20, 3)))
    np.save(tmp_path / "npy" / "s05_a13.npy", np.ones((3, 20, 3)))
    count, skipped = prepare_sysu.prepare(tmp_path / "npy", tmp_path / "skip", fmt="npy")
    assert count == 4 and sorted(skipped) == ["s04_a02", "s05_a13"]
    assert skipped["s04_a02"].endswith("s04_a02.npy: the array has no frame")
    assert skipped["s05_a13"].endswith("s05_a13.npy: action 13 is outside 1..12")
