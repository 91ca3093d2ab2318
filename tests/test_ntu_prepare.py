"""NTU raw skeleton preparation: parser, denoising rules, layout, splits, command, resume, npz."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InputError
from tests.ntu_fixtures import (
    BodyFrame,
    Track,
    compose,
    random_frames,
    realistic_frames,
    sample_name,
    skeleton_text,
    steady_track,
    write_skeleton,
)
from tools import prepare_ntu
from tools.ntu_denoise import body_motion, denoise, rank_bodies
from tools.ntu_layout import DATASETS, centre, ctrgcn_rows, person_slots
from tools.ntu_raw import parse_skeleton, parse_skeleton_bytes

ID_A, ID_B, ID_C, ID_D = "72057594037931101", "72057594037931102", "72057594037931103", "72057594037931104"


def f32(values) -> np.ndarray:
    """What the file holds for ``values``: the 7-significant-digit text, read back as float32."""
    return np.vectorize(lambda v: np.float32(float(f"{v:.7g}")))(values).astype(np.float32)


def raw_of(tmp_path: Path, frames, name: str = "S001C001P001R001A050"):
    return parse_skeleton(write_skeleton(tmp_path / f"{name}.skeleton", frames))


# ----------------------------------------------------------------------------------------------- parser
def test_parser_keeps_bodies_joints_colours_and_exact_ids(tmp_path):
    a, b = steady_track(ID_A, 0, 6, swing=0.1), steady_track(ID_B, 2, 3, x=1.0)
    raw = raw_of(tmp_path, compose(6, [a, b]))
    assert raw.num_frames == 6 and [body.body_id for body in raw.bodies] == [ID_A, ID_B]
    first, second = raw.bodies
    assert first.joints.shape == (6, 25, 3) and first.joints.dtype == np.float32
    np.testing.assert_array_equal(first.joints, f32(a.joints))
    np.testing.assert_array_equal(first.colors, f32(a.colors))
    np.testing.assert_array_equal(second.frames, [2, 3, 4])
    np.testing.assert_array_equal(second.colors, f32(b.colors))


def _with_joint_line(text: str, line: int, fields: int) -> bytes:
    """``text`` with the 12 numbers of (1-based) joint ``line`` cut or padded to ``fields`` numbers."""
    lines = text.split("\r\n")
    numbers = lines[line - 1].split()
    lines[line - 1] = " ".join((numbers + ["0"] * fields)[:fields])
    return "\r\n".join(lines).encode()


@pytest.mark.parametrize("fields", [7, 11, 13])
def test_parser_reads_joint_lines_with_missing_or_extra_numbers_as_the_public_one(fields):
    text = skeleton_text(compose(60, [steady_track(ID_A, 0, 60, swing=0.1), steady_track(ID_B, 0, 60, x=1.0)]))
    reference = parse_skeleton_bytes(text.encode(), "x")
    line = 2 + 37 * 55 + 3 + 10  # joint 11 of frame 38 (55 lines per two-body frame, 3 header lines)
    for target in (line, text.count("\r\n") - 3):  # in the middle, and in the last frame
        raw = parse_skeleton_bytes(_with_joint_line(text, target, fields), "x")
        for body, expected in zip(raw.bodies, reference.bodies):
            np.testing.assert_array_equal(body.joints, expected.joints)
            np.testing.assert_array_equal(body.colors, expected.colors)


def test_parser_names_the_line_of_a_joint_line_it_cannot_read():
    text = skeleton_text(compose(60, [steady_track(ID_A, 0, 60)]))
    line = 2 + 37 * 28 + 3 + 10  # joint 11 of frame 38 (28 lines per one-body frame)
    with pytest.raises(InputError, match=rf"s\.skeleton: line {line}: 5 numbers on a joint line, expected 12"):
        parse_skeleton_bytes(_with_joint_line(text, line, 5), "x", "s.skeleton")
    lines = text.split("\r\n")
    del lines[line - 1]  # a joint line lost: the block runs into frame 39's body count line
    with pytest.raises(InputError, match=rf"s\.skeleton: line {line + 14}: 1 numbers on a joint line"):
        parse_skeleton_bytes("\r\n".join(lines).encode(), "x", "s.skeleton")


def test_parser_keeps_ids_beyond_float_precision_apart():
    ids = ["72057594037931101", "72057594037931102"]  # equal as float64
    frames = [[BodyFrame(i, np.ones((25, 3)), np.ones((25, 2))) for i in ids]]
    raw = parse_skeleton_bytes(skeleton_text(frames).encode(), "S001C001P001R001A001")
    assert [body.body_id for body in raw.bodies] == ids


def test_parser_drops_frames_without_bodies(tmp_path):
    frames = compose(9, [steady_track(ID_A, 2, 3)])  # bodies in frames 2-4 only
    frames[6] = [frames[2][0]]  # and again after two empty frames
    raw = raw_of(tmp_path, frames)
    assert raw.num_frames == 4
    np.testing.assert_array_equal(raw.bodies[0].frames, [0, 1, 2, 3])


def test_parser_reads_exponents_and_reports_bad_files(tmp_path):
    text = skeleton_text(compose(2, [steady_track(ID_A, 0, 2)]))
    lines = text.split("\r\n")
    lines[4] = "1.5E-05 " + lines[4].split(" ", 1)[1]
    raw = parse_skeleton_bytes("\r\n".join(lines).encode(), "x")
    assert raw.bodies[0].joints[0, 0, 0] == np.float32(1.5e-05)
    lines[6] = "0.1 abc " + lines[6].split(" ", 2)[2]
    with pytest.raises(InputError, match=r"bad\.skeleton: line 7: not a number: b'abc'"):
        parse_skeleton_bytes("\r\n".join(lines).encode(), "x", "bad.skeleton")
    with pytest.raises(InputError, match=r"t\.skeleton: file ends early, in frame 2"):
        parse_skeleton_bytes(text[: len(text) // 2 + 200].encode(), "x", "t.skeleton")
    with pytest.raises(InputError, match=r"line 4: 24 joints in frame 1, expected 25"):
        parse_skeleton_bytes(skeleton_text(compose(2, [steady_track(ID_A, 0, 2)]), joint_count=24).encode(), "x")
    with pytest.raises(InputError, match="no frame with a body"):
        parse_skeleton_bytes(b"3\r\n0\r\n0\r\n0\r\n", "x")


# -------------------------------------------------------------------------------------------- denoising
def test_single_body_is_kept_whole(tmp_path):
    actors = denoise(raw_of(tmp_path, compose(8, [steady_track(ID_A, 0, 8)])))
    assert actors.joints.shape == (8, 75) and actors.num_actors == 1


def test_body_interval_is_first_frame_plus_count(tmp_path):
    # A vanishes for frames 4-6 while B stays: the reference places A's 17 entries on frames 0..16.
    a, b = steady_track(ID_A, 0, 20, swing=0.3), steady_track(ID_B, 0, 20, x=1.0)
    frames = compose(20, [a, b], skip=[(ID_A, k) for k in (4, 5, 6)])
    joints = denoise(raw_of(tmp_path, frames)).joints
    kept = np.delete(np.arange(20), [4, 5, 6])
    np.testing.assert_array_equal(joints[:17, :75], f32(a.joints[kept]).reshape(17, 75))
    assert not joints[17:, :75].any()


def test_short_body_is_dropped(tmp_path):
    long = steady_track(ID_A, 0, 30)
    assert denoise(raw_of(tmp_path, compose(30, [long, steady_track(ID_B, 5, 11, x=1)]))).num_actors == 1
    assert denoise(raw_of(tmp_path, compose(30, [long, steady_track(ID_B, 5, 12, x=1)]))).num_actors == 2


def test_noisy_spread_body_is_dropped_or_its_motion_recomputed(tmp_path):
    a = steady_track(ID_A, 0, 30, swing=0.05)
    lying = steady_track(ID_B, 0, 30, swing=0.3, lying=True, x=1)
    assert denoise(raw_of(tmp_path, compose(30, [a, lying]))).num_actors == 1
    # B lies and sways wildly in 9 of 30 frames (30% noisy: kept). Its motion over all frames beats A's,
    # its motion over the valid frames does not: A becomes actor 1.
    wild = mix(steady_track(ID_B, 0, 30, swing=1.5, lying=True, x=1), steady_track(ID_B, 0, 30, x=1), 9)
    raw = raw_of(tmp_path, compose(30, [wild, a]))
    assert body_motion(raw.bodies[0].joints) > body_motion(raw.bodies[1].joints)
    assert [body.body_id for body in rank_bodies(raw)] == [ID_A, ID_B]
    # B lies still in 9 frames and sways otherwise: its valid-frame motion is the larger one, min keeps
    # the smaller; A's motion lies in between.
    calm = mix(steady_track(ID_B, 0, 30, lying=True, x=1), steady_track(ID_B, 0, 30, swing=0.6, x=1), 9)
    low, high = body_motion(f32(calm.joints)), body_motion(f32(calm.joints[9:]))
    base = body_motion(f32(steady_track(ID_A, 0, 30).joints))
    assert low < high
    a = steady_track(ID_A, 0, 30, swing=float(np.sqrt(low + high - 2 * base)))
    assert [body.body_id for body in rank_bodies(raw_of(tmp_path, compose(30, [calm, a])))] == [ID_A, ID_B]


def mix(noisy: Track, clean: Track, count: int) -> Track:
    """``noisy`` for the first ``count`` frames, ``clean`` afterwards."""
    joints = np.concatenate((noisy.joints[:count], clean.joints[count:]))
    return Track(clean.body_id, clean.start, joints, np.concatenate((noisy.colors[:count], clean.colors[count:])))


def test_actor_assignment_by_interval_overlap(tmp_path):
    a = steady_track(ID_A, 0, 30, swing=0.4)  # actor 1: largest motion
    c = steady_track(ID_C, 10, 31, swing=0.2, x=1.0)  # overlaps A -> actor 2
    b = steady_track(ID_B, 29, 21, swing=0.1, x=-1.0)  # shares one frame with A -> actor 1's slot
    d = steady_track(ID_D, 5, 41, swing=0.05, x=2.0)  # overlaps both -> dropped
    raw = raw_of(tmp_path, compose(50, [a, b, c, d]))
    assert [body.body_id for body in rank_bodies(raw)] == [ID_A, ID_C, ID_B, ID_D]
    joints = denoise(raw).joints.reshape(50, 2, 25, 3)
    np.testing.assert_array_equal(joints[:29, 0], f32(a.joints[:29]))
    np.testing.assert_array_equal(joints[29:, 0], f32(b.joints))  # B overwrites A's last frame
    np.testing.assert_array_equal(joints[10:41, 1], f32(c.joints))
    assert not joints[:10, 1].any() and not joints[41:, 1].any()
    assert not np.isin(f32(d.joints), joints).all()


def test_two_actors_and_frames_without_actor_removed(tmp_path):
    a, c = steady_track(ID_A, 0, 30, swing=0.3), steady_track(ID_C, 0, 30, swing=0.1, x=1.0)
    short = steady_track(ID_B, 30, 8, swing=0.5, x=-1.0)  # alone in frames 30-37, dropped (length)
    actors = denoise(raw_of(tmp_path, compose(38, [a, c, short])))
    assert actors.joints.shape == (30, 150) and actors.colors.shape == (30, 2, 25, 2)
    np.testing.assert_array_equal(actors.joints[:, 75:].reshape(30, 25, 3), f32(c.joints))
    np.testing.assert_array_equal(actors.colors[:, 1], f32(c.colors))


def test_body_listed_more_often_than_frames_is_an_error(tmp_path):
    twice = [BodyFrame(ID_A, np.ones((25, 3)), np.ones((25, 2)))] * 2  # same id twice in one frame
    with pytest.raises(InputError, match=f"body {ID_A} has more entries than the sequence has frames"):
        denoise(raw_of(tmp_path, [twice]))


# ---------------------------------------------------------------------------------------------- layout
def test_centring_origin_and_missing_actor_frames_stay_zero(tmp_path):
    a = steady_track(ID_A, 10, 30, swing=0.4)  # actor 1 appears at frame 10
    c = steady_track(ID_C, 0, 40, swing=0.1, x=1.0)
    actors = denoise(raw_of(tmp_path, compose(40, [a, c])))
    centred = centre(actors.joints, "s").reshape(40, 2, 25, 3)
    origin = f32(a.joints[0, 1])
    assert not centred[:10, 0].any()
    np.testing.assert_array_equal(centred[10, 0, 1], [0, 0, 0])
    np.testing.assert_allclose(centred[:, 1], f32(c.joints) - origin, atol=1e-6)
    single = centre(denoise(raw_of(tmp_path, compose(5, [steady_track(ID_A, 0, 5)]))).joints, "s")
    np.testing.assert_array_equal(single.reshape(5, 25, 3)[0, 1], [0, 0, 0])


def test_single_actor_zero_filled_for_ntu60_duplicated_for_ntu120():
    rng = np.random.default_rng(0)
    joints, colors = rng.normal(size=(7, 75)).astype(np.float32), rng.normal(size=(7, 1, 25, 2)).astype(np.float32)
    data60, color60 = person_slots(joints, colors, 10, DATASETS["ntu60"].duplicate_single)
    data120, color120 = person_slots(joints, colors, 10, DATASETS["ntu120"].duplicate_single)
    assert data60.shape == (3, 10, 25, 2) and color60.shape == (10, 2, 25, 2)
    np.testing.assert_array_equal(data60[:, :7, :, 0], joints.reshape(7, 25, 3).transpose(2, 0, 1))
    assert not data60[..., 1].any() and not color60[:, 1].any() and not data60[:, 7:].any()
    np.testing.assert_array_equal(data120[..., 1], data120[..., 0])
    np.testing.assert_array_equal(color120[:, 1], color120[:, 0])
    np.testing.assert_array_equal(ctrgcn_rows(data60[None])[0, :7, :75], joints)


# --------------------------------------------------------------------------- reference pipeline (oracle)
def oracle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The documented rules, written plainly with loops: centred joints (T, 75|150), colours (T, A, 25, 2)."""
    lines = path.read_text().split("\n")
    cursor, order, bodies, kept = 1, [], {}, 0
    for _ in range(int(lines[0])):
        count = int(lines[cursor])
        cursor += 1
        for _ in range(count):
            body_id = lines[cursor].split()[0]
            rows = [line.split() for line in lines[cursor + 2 : cursor + 2 + int(lines[cursor + 1])]]
            cursor += 2 + len(rows)
            if body_id not in bodies:
                order.append(body_id)
                bodies[body_id] = {"start": kept, "joints": [], "colors": []}
            bodies[body_id]["joints"].append([[float(v) for v in row[:3]] for row in rows])
            bodies[body_id]["colors"].append([[float(row[5]), float(row[6])] for row in rows])
        if count:
            kept += 1
    for body in bodies.values():
        body["joints"] = np.array(body["joints"], dtype=np.float32)
        body["colors"] = np.array(body["colors"], dtype=np.float32)
        body["motion"] = np.sum(np.var(body["joints"].reshape(-1, 3), axis=0))
    if len(order) > 1:
        order = [b for b in order if len(bodies[b]["joints"]) > 11]
        for body_id in list(order):
            if len(order) == 1:
                break
            joints = bodies[body_id]["joints"]
            valid = []
            for t in range(len(joints)):
                x_range = float(joints[t, :, 0].max() - joints[t, :, 0].min())
                y_range = float(joints[t, :, 1].max() - joints[t, :, 1].min())
                if x_range <= 0.8 * y_range:
                    valid.append(t)
            if len(valid) == len(joints):
                continue
            if (len(joints) - len(valid)) / len(joints) >= 0.69754:
                order.remove(body_id)
            else:
                motion = np.sum(np.var(joints[valid].reshape(-1, 3), axis=0))
                bodies[body_id]["motion"] = min(bodies[body_id]["motion"], motion)
        order = sorted(order, key=lambda b: bodies[b]["motion"], reverse=True)
    two = len(order) > 1
    joints = np.zeros((kept, 2 if two else 1, 75), dtype=np.float32)
    colors = np.zeros((kept, 2 if two else 1, 25, 2), dtype=np.float32)
    hulls = []
    for body_id in order:
        body = bodies[body_id]
        start, end = body["start"], body["start"] + len(body["joints"]) - 1
        if not hulls:
            hulls = [[start, end], [0, 0]]
            slot = 0
        else:
            slot = None
            for k in (0, 1):
                if min(hulls[k][1], end) - max(hulls[k][0], start) <= 0:
                    slot = k
                    hulls[k] = [min(start, hulls[k][0]), max(end, hulls[k][1])]
                    break
            if slot is None:
                continue
        for t in range(start, end + 1):
            joints[t, slot] = body["joints"][t - start].reshape(75)
            colors[t, slot] = body["colors"][t - start]
    if len(bodies) > 1:
        keep = [t for t in range(kept) if joints[t].sum() != 0]
        joints, colors = joints[keep], colors[keep]
    missing = [[joints[t, k].sum() == 0 for t in range(len(joints))] for k in range(joints.shape[1])]
    first = next(t for t in range(len(joints)) if joints[t, 0].any())
    origin = joints[first, 0, 3:6].copy()
    for t in range(len(joints)):
        for k in range(joints.shape[1]):
            for v in range(25):
                joints[t, k, 3 * v : 3 * v + 3] -= origin
            if two and missing[k][t]:
                joints[t, k] = 0
    return joints.reshape(len(joints), -1), colors


def test_matches_reference_rules_on_random_multibody_files(tmp_path):
    rng = np.random.default_rng(7)
    compared = two_actor = 0
    for k in range(40):
        path = write_skeleton(tmp_path / f"{sample_name(action=k + 1)}.skeleton", random_frames(rng))
        try:
            expected = oracle(path)
        except StopIteration:  # no body longer than 11 frames: the reference fails too
            with pytest.raises(InputError):
                prepare_ntu.prepare_sample(path)
            continue
        joints, colors = prepare_ntu.prepare_sample(path)
        np.testing.assert_allclose(joints, expected[0], atol=1e-6, rtol=0)
        np.testing.assert_allclose(colors, expected[1], atol=1e-6, rtol=0)
        compared += 1
        two_actor += joints.shape[1] == 150
    assert compared >= 30 and two_actor >= 10


# ------------------------------------------------------------------------------------------ the command
def write_dataset(root: Path, names: list[str], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        bodies = 2 if int(name[-3:]) >= 50 else 1
        write_skeleton(root / f"{name}.skeleton", realistic_frames(rng, int(rng.integers(15, 40)), bodies))
    return root


NTU60_NAMES = [sample_name(s, c, p, 1, a) for s in (1, 2) for c in (1, 2, 3) for p in (1, 3, 4) for a in (3, 55)]


@pytest.fixture(scope="module")
def ntu60_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ntu60")
    skeletons = write_dataset(root / "nturgb+d_skeletons", NTU60_NAMES)
    ntu120_only = skeletons / f"{sample_name(18, 1, 1, 1, 3)}.skeleton"
    write_skeleton(ntu120_only, realistic_frames(np.random.default_rng(1), 20, 1))
    missing = root / "missing.txt"
    missing.write_text("Samples with missing skeletons\n\nS001C001P001R001A003\n")
    summary = prepare_ntu.prepare([skeletons], missing, "ntu60", root / "out", npz=True, workers=1)
    return root, summary


def read_split(folder: Path, split: str):
    names = (folder / f"{split}_names.txt").read_text().split()
    return (np.load(folder / f"{split}_data.npy"), np.load(folder / f"{split}_label.npy"), names,
            np.load(folder / f"{split}_color.npy"))


def test_split_membership_row_order_and_labels(ntu60_run):
    root, summary = ntu60_run
    assert (summary.found, summary.excluded, summary.ignored, summary.failed) == (37, 1, 1, {})
    kept = sorted(set(NTU60_NAMES) - {"S001C001P001R001A003"})
    order = DATASETS["ntu60"].protocols["xsub"]
    for split, ids in (("train", order.train), ("test", order.test)):
        data, labels, names, color = read_split(root / "out" / "xsub", split)
        assert names == [n for p in ids for n in kept if int(n[9:12]) == p]
        np.testing.assert_array_equal(labels, [int(n[-3:]) - 1 for n in names])
        assert data.shape == (len(names), 3, 300, 25, 2) and data.dtype == np.float32
        assert color.shape == (len(names), 300, 2, 25, 2) and labels.dtype == np.int64
    _, _, train, _ = read_split(root / "out" / "xview", "train")
    assert train == [n for c in (2, 3) for n in kept if int(n[5:8]) == c]
    assert summary.splits == {"xsub": {"train": 23, "test": 12}, "xview": {"train": 24, "test": 11}}


def test_prepared_rows_equal_prepared_samples_and_colours_are_kept(ntu60_run):
    root, _ = ntu60_run
    data, labels, names, color = read_split(root / "out" / "xsub", "test")
    for row in (0, len(names) - 1, int(np.argmax(labels < 49))):
        path = root / "nturgb+d_skeletons" / f"{names[row]}.skeleton"
        joints, colors = prepare_ntu.prepare_sample(path)
        expected, expected_color = person_slots(joints, colors, 300, duplicate_single=False)
        np.testing.assert_array_equal(data[row], expected)
        np.testing.assert_array_equal(color[row], expected_color)
        raw = parse_skeleton(path)
        if len(raw.bodies) == 1:
            np.testing.assert_array_equal(color[row, : raw.num_frames, 0], raw.bodies[0].colors)
        assert color[row, 0, 0, 0, 0] > 100  # pixels, not metres


def test_npz_matches_prepared_arrays(ntu60_run):
    root, _ = ntu60_run
    for protocol, npz_name in (("xsub", "NTU60_CS.npz"), ("xview", "NTU60_CV.npz")):
        with np.load(root / "out" / npz_name) as npz:
            assert sorted(npz.files) == ["x_test", "x_train", "y_test", "y_train"]
            for split in ("train", "test"):
                data, labels, _, _ = read_split(root / "out" / protocol, split)
                x, y = npz[f"x_{split}"], npz[f"y_{split}"]
                assert x.shape == (len(labels), 300, 150) and x.dtype == np.float32
                np.testing.assert_array_equal(x, ctrgcn_rows(data))
                assert y.shape == (len(labels), 60) and y.dtype == np.float64
                np.testing.assert_array_equal(y.argmax(1), labels)
                np.testing.assert_array_equal(y.sum(1), 1)


def test_meta_and_log(ntu60_run):
    root, _ = ntu60_run
    meta = json.loads((root / "out" / "xsub" / "meta.json").read_text())
    assert meta["num_class"] == 60 and meta["splits"] == {"train": 23, "test": 12} and meta["graph"] == "ntu_rgb_d"
    assert (root / "out" / "prepare_log.txt").read_text().startswith("# 0 skipped")


def test_bad_files_are_reported_and_skipped(tmp_path, capsys):
    good = [sample_name(1, 1, 1, 1, a) for a in (1, 2)]
    skeletons = write_dataset(tmp_path / "sk", good)
    text = skeleton_text(realistic_frames(np.random.default_rng(2), 20, 1))
    bad = {
        "S001C001P001R001A003": text[: len(text) // 2],
        "S001C001P001R001A004": text.replace("\r\n25\r\n", "\r\n25\r\nx", 1),
        "S001C001P001R001A005": skeleton_text(realistic_frames(np.random.default_rng(3), 5, 1), joint_count=20),
        "S001C001P001R001A006": "2\r\n0\r\n0\r\n",
        "badname": text,
    }
    for name, content in bad.items():
        (skeletons / f"{name}.skeleton").write_text(content)
    os.symlink(tmp_path / "nowhere.skeleton", skeletons / "S001C001P001R001A007.skeleton")
    write_skeleton(skeletons / "S001C001P001R001A008.skeleton", nan_frames())
    (tmp_path / "missing.txt").write_text("")
    status = prepare_ntu.main(["--skeletons", str(skeletons), "--missing", str(tmp_path / "missing.txt"),
                               "--dataset", "ntu60", "--out", str(tmp_path / "out"), "--protocols", "xview",
                               "--workers", "1"])
    assert status == 0
    log = (tmp_path / "out" / "prepare_log.txt").read_text().splitlines()
    reasons = dict(line.split("\t") for line in log[1:])
    assert log[0] == "# 7 skipped sample(s): name<TAB>reason"
    assert list(reasons) == sorted(set(bad) | {"S001C001P001R001A007", "S001C001P001R001A008"})
    assert "file ends early" in reasons["S001C001P001R001A003"]
    assert "not a number" in reasons["S001C001P001R001A004"]
    assert "20 joints" in reasons["S001C001P001R001A005"]
    assert "no frame with a body" in reasons["S001C001P001R001A006"]
    assert "cannot read" in reasons["S001C001P001R001A007"]
    assert "SsssCcccPpppRrrrAaaa" in reasons["badname"]
    assert reasons["S001C001P001R001A008"] == NAN_REASON.format(skeletons / "S001C001P001R001A008.skeleton")
    assert (tmp_path / "out" / "xview" / "test_names.txt").read_text().split() == good
    out, err = capsys.readouterr()
    assert f"7 skipped (see {tmp_path / 'out' / 'prepare_log.txt'})" in out
    assert [line for line in err.splitlines() if line.startswith("skipped ")] == [
        f"skipped {name}: {reason}" for name, reason in reasons.items()
    ]


#: The reason ``nan_frames`` is skipped, for its file's path.
NAN_REASON = ("{}: 3 non-finite coordinate(s) (NaN or infinite) in 2 frame(s) and 2 joint(s), first at frame 2, "
              "joint 5")  # fmt: skip


def nan_frames():
    """Two bodies over 20 frames (frame 1 has none): a NaN joint 5 of body 2 in file frame 3, an overflowing
    colour x of body 1's joint 5 and an infinite z of its joint 9 in file frame 12 (frames with a body: 2, 11)."""
    frames = realistic_frames(np.random.default_rng(4), 20, 2)
    frames[0] = []
    frames[2][1].joints[4, 0] = np.nan
    frames[11][0].colors[4, 0] = 1e39  # beyond float32
    frames[11][0].joints[8, 2] = -np.inf
    return frames


def test_non_finite_sample_is_named_and_counted(tmp_path):
    path = write_skeleton(tmp_path / f"{sample_name()}.skeleton", nan_frames())
    with pytest.raises(InputError, match=f"^{re.escape(NAN_REASON.format(path))}$"):
        prepare_ntu.prepare_sample(path)


def test_all_bad_or_strict_writes_no_output(tmp_path, capsys):
    skeletons = tmp_path / "sk"
    skeletons.mkdir()
    write_skeleton(skeletons / f"{sample_name(action=1)}.skeleton", nan_frames())
    text = skeleton_text(realistic_frames(np.random.default_rng(2), 20, 1))
    (skeletons / f"{sample_name(action=2)}.skeleton").write_text(text[: len(text) // 3])
    (tmp_path / "missing.txt").write_text("")
    args = ["--skeletons", str(skeletons), "--missing", str(tmp_path / "missing.txt"), "--dataset", "ntu60",
            "--out", str(tmp_path / "out"), "--workers", "1"]  # fmt: skip
    assert prepare_ntu.main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith(("skipped", "error"))]
    assert [line[:28] for line in err[:2]] == ["skipped S001C001P001R001A001", "skipped S001C001P001R001A002"]
    assert re.fullmatch(r"error: no usable ntu60 sample in .*sk \(2 skipped, first S001C001P001R001A001: .*\)", err[2])
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [".cache"]  # the resumable cache only
    write_dataset(skeletons, [sample_name(action=3)])
    assert prepare_ntu.main([*args, "--strict"]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: --strict: 2 skipped, first S001C001P001R001A001: ")
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [".cache"]
    assert prepare_ntu.main(args) == 0
    assert (tmp_path / "out" / "xsub" / "train_names.txt").read_text().split() == [sample_name(action=3)]


def test_errors_are_one_line_and_leave_no_output(tmp_path, capsys):
    (tmp_path / "missing.txt").write_text("")
    args = ["--missing", str(tmp_path / "missing.txt"), "--dataset", "ntu120", "--out", str(tmp_path / "out")]
    assert prepare_ntu.main(["--skeletons", str(tmp_path / "nope"), *args]) == 2
    assert prepare_ntu.main(["--skeletons", str(tmp_path), *args, "--protocols", "xview"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "nope" in err[0] and "xview" in err[1]
    assert not (tmp_path / "out").exists()


def test_resume_reparses_nothing_and_redoes_changed_groups(tmp_path, monkeypatch):
    names = [sample_name(1, c, p, 1, a) for c in (1, 2) for p in (1, 2) for a in (7, 60)]
    skeletons = write_dataset(tmp_path / "sk", names)
    (tmp_path / "missing.txt").write_text("")
    calls = []
    real = prepare_ntu.prepare_sample
    monkeypatch.setattr(prepare_ntu, "prepare_sample", lambda path: calls.append(Path(path).stem) or real(path))
    run = lambda: prepare_ntu.prepare([skeletons], tmp_path / "missing.txt", "ntu120", tmp_path / "out", ["xset"])
    first = run()
    before = read_split(tmp_path / "out" / "xset", "test")
    assert first.parsed == len(names) and sorted(calls) == sorted(names)
    calls.clear()
    second = run()
    assert calls == [] and (second.parsed, second.resumed) == (0, len(names))
    after = read_split(tmp_path / "out" / "xset", "test")
    np.testing.assert_array_equal(before[0], after[0])
    assert before[2] == after[2]
    changed = skeletons / f"{names[0]}.skeleton"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    lost = next(iter((tmp_path / "out" / ".cache").glob("*/S001C002P002-*.npz")))  # a killed run's group:
    lost.unlink()
    (lost.parent / f".{lost.name}.x.tmp.npz").write_bytes(b"half")  # its half-written temporary file
    third = run()
    assert sorted(calls) == sorted(n for n in names if n[:12] in {"S001C001P001", "S001C002P002"})
    assert third.parsed == 4 and sorted(p.name[:12] for p in lost.parent.iterdir()) == sorted({n[:12] for n in names})


def test_pool_gives_the_same_files_and_ntu120_duplicates_single_actors(tmp_path):
    names = [sample_name(s, 1, p, 1, a) for s in (1, 2) for p in (1, 3) for a in (5, 120)]
    skeletons = write_dataset(tmp_path / "sk", names)
    (tmp_path / "missing.txt").write_text("")
    for workers, out in ((1, "serial"), (2, "pool")):
        prepare_ntu.prepare([skeletons], tmp_path / "missing.txt", "ntu120", tmp_path / out, workers=workers)
    for protocol in ("xsub", "xset"):
        for split in ("train", "test"):
            serial = read_split(tmp_path / "serial" / protocol, split)
            for a, b in zip(serial, read_split(tmp_path / "pool" / protocol, split)):
                np.testing.assert_array_equal(a, b)
            data, labels, _, color = serial
            single = labels < 49
            assert single.any() and (~single).any()
            np.testing.assert_array_equal(data[single, ..., 1], data[single, ..., 0])
            np.testing.assert_array_equal(color[single, :, 1], color[single, :, 0])
    assert read_split(tmp_path / "serial" / "xsub", "train")[2] == [n for n in sorted(names) if n[9:12] == "001"]
    assert read_split(tmp_path / "serial" / "xset", "train")[2] == [n for n in sorted(names) if n[:4] == "S002"]
