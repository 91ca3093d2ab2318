"""Skeleton readers and feeders on files written here in the real formats: values, order, randomness, errors."""
import json
import pickle

import numpy as np
import pytest
import torch

from engine.errors import InputError
from feeders.bone_pairs import bone_pairs
from feeders.ntu import NTUFeeder
from feeders.prepared import split_paths, write_meta, write_prepared_split
from feeders.registry import FEEDERS, build_feeder
from feeders.skeleton_store import NpzSkeletons, open_split
from feeders.transforms import to_bone, to_motion
from feeders.ucla import UCLAFeeder


def coded_rows(n: int, frames: int) -> np.ndarray:
    """CTR-GCN ``x`` rows (N, T, 150) whose entries are distinct: value = flat position + 1."""
    return (np.arange(n * frames * 150, dtype=np.float32) + 1).reshape(n, frames, 150)


def write_npz(path, n=4, frames=12, num_class=6, compressed=False):
    labels = np.arange(n) % num_class
    arrays = {"x_train": coded_rows(n, frames), "y_train": np.eye(num_class, dtype=np.float32)[labels]}
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return arrays["x_train"], labels


def write_prepared(root, n=6, frames=40, valid=30, num_class=5, split="train", meta=True, seed=0):
    rng = np.random.default_rng(seed)
    data = np.zeros((n, 3, frames, 25, 2), np.float32)
    data[:, :, :valid] = rng.normal(size=(n, 3, valid, 25, 2))
    labels = np.arange(n) % num_class
    names = [f"S001C001P{i:03d}R001A{labels[i] + 1:03d}" for i in range(n)]
    write_prepared_split(root, split, data, labels, names)
    if meta:
        write_meta(root, "test-set", num_class, "ntu_rgb_d", {split: n})
    return data, labels, names


# ----------------------------------------------------------------------------- readers


def test_npz_lazy_transpose_puts_every_value_in_place(tmp_path):
    rows, labels = write_npz(tmp_path / "set.npz")
    store = open_split(tmp_path / "set.npz", "train")
    assert isinstance(store.data, NpzSkeletons) and isinstance(store.data.rows, np.memmap)
    assert store.shape == (4, 3, 12, 25, 2) and store.num_class == 6
    assert store.names == ["train_0", "train_1", "train_2", "train_3"] and store.labels.tolist() == labels.tolist()
    sample = store.data[2]
    assert sample.shape == (3, 12, 25, 2) and np.shares_memory(sample, store.data.rows)
    for c, t, v, m in [(0, 0, 0, 0), (2, 5, 24, 1), (1, 11, 7, 0), (0, 3, 20, 1)]:
        assert sample[c, t, v, m] == rows[2, t, m * 75 + v * 3 + c]


def test_compressed_npz_and_no_mmap_read_the_same_values(tmp_path):
    rows, _ = write_npz(tmp_path / "packed.npz", compressed=True)
    write_npz(tmp_path / "plain.npz")
    packed = open_split(tmp_path / "packed.npz", "train")
    loaded = open_split(tmp_path / "plain.npz", "train", use_mmap=False)
    assert not isinstance(packed.data.rows, np.memmap) and not isinstance(loaded.data.rows, np.memmap)
    np.testing.assert_array_equal(packed.data[3], loaded.data[3])
    np.testing.assert_array_equal(packed.data[3][:, 4, 10, 1], rows[3, 4, 75 + 30 : 75 + 33])


def test_prepared_reader(tmp_path):
    data, labels, names = write_prepared(tmp_path)
    store = open_split(tmp_path, "train")
    assert isinstance(store.data, np.memmap) and store.shape == data.shape
    assert store.names == names and store.labels.dtype == np.int64 and store.labels.tolist() == labels.tolist()
    assert store.num_class == 5 and store.graph == "ntu_rgb_d"
    np.testing.assert_array_equal(store.data[4], data[4])
    (tmp_path / "meta.json").unlink()
    assert open_split(tmp_path, "train").num_class is None


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: split_paths(root, "train")["names"].unlink(), r"train_names\.txt: missing; .*split 'train'"),
        (
            lambda root: np.save(split_paths(root, "train")["data"], np.zeros((6, 3, 40, 25))),
            r"train_data\.npy: data must be a float \(N, C, T, V, M\) array",
        ),
        (lambda root: np.save(split_paths(root, "train")["label"], np.arange(5)), r"6 data rows, 5 labels and 6 names"),
        (lambda root: np.save(split_paths(root, "train")["label"], np.arange(6)), r"label\.npy: label 5 at row 5"),
        (lambda root: (root / "meta.json").write_text("{oops"), r"meta\.json: malformed JSON"),
    ],
)
def test_prepared_reader_errors(tmp_path, damage, message):
    write_prepared(tmp_path)
    damage(tmp_path)
    with pytest.raises(InputError, match=message) as caught:
        open_split(tmp_path, "train")
    assert "\n" not in str(caught.value)


def test_missing_split_and_missing_path(tmp_path):
    write_prepared(tmp_path)
    with pytest.raises(InputError, match=r"test_data\.npy: missing; prepared split 'test'"):
        open_split(tmp_path, "test")
    with pytest.raises(InputError, match=r"nowhere\.npz: not found"):
        open_split(tmp_path / "nowhere.npz", "train")


def test_npz_errors(tmp_path):
    write_npz(tmp_path / "set.npz")
    with pytest.raises(InputError, match=r"set\.npz: no 'x_test' array for split 'test' \(has: x_train, y_train\)"):
        open_split(tmp_path / "set.npz", "test")
    np.savez(tmp_path / "flat.npz", x_train=np.zeros((2, 10, 75), np.float32), y_train=np.eye(3)[:2])
    with pytest.raises(InputError, match=r"flat\.npz: 'x_train' must be a float \(N, T, 150\) array"):
        open_split(tmp_path / "flat.npz", "train")
    np.savez(tmp_path / "short.npz", x_train=np.zeros((2, 10, 150), np.float32), y_train=np.eye(3))
    with pytest.raises(InputError, match=r"short\.npz: 'y_train' must be one-hot \(2, K\)"):
        open_split(tmp_path / "short.npz", "train")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"junk\.npz: not a readable \.npz"):
        open_split(tmp_path / "junk.npz", "train")


# ----------------------------------------------------------------------------- NTU feeder


def test_ntu_feeder_identity_pipeline_reads_npz_values(tmp_path):
    rows, labels = write_npz(tmp_path / "set.npz", frames=12)
    feeder = NTUFeeder(str(tmp_path / "set.npz"), "train", window_size=12, p_interval=[1.0])
    x, label, index = feeder[1]
    assert x.dtype == np.float32 and x.shape == (3, 12, 25, 2) and (label, index) == (labels[1], 1)
    assert x[2, 7, 13, 1] == rows[1, 7, 75 + 13 * 3 + 2]
    assert (feeder.num_class, feeder.num_point, feeder.num_person, feeder.in_channels) == (6, 25, 2, 3)
    assert feeder.sample_name[1] == "train_1" and feeder.label.dtype == np.int64


def test_ntu_feeder_randomness_is_keyed_by_seed_epoch_index(tmp_path):
    write_prepared(tmp_path, valid=120, frames=150)
    args = {"data_path": str(tmp_path), "window_size": 64, "p_interval": [0.5, 1.0], "random_rot": True}
    first, second = NTUFeeder(**args, seed=3), NTUFeeder(**args, seed=3)
    forward = [first[i][0] for i in range(6)]
    backward = [second[i][0] for i in reversed(range(6))][::-1]
    for a, b in zip(forward, backward):
        np.testing.assert_array_equal(a, b)
    second.set_epoch(1)
    assert not np.allclose(second[2][0], forward[2])
    assert not np.allclose(NTUFeeder(**args, seed=4)[2][0], forward[2])
    first.set_epoch(1)
    np.testing.assert_array_equal(first[2][0], second[2][0])


def test_ntu_test_split_is_deterministic(tmp_path):
    data, _, _ = write_prepared(tmp_path, valid=64, frames=70)
    feeder = NTUFeeder(str(tmp_path), window_size=64, p_interval=[1.0])
    feeder.set_epoch(5)
    np.testing.assert_array_equal(feeder[0][0], data[0, :, :64])


def test_ntu_bone_and_motion_streams_follow_the_joint_stream(tmp_path):
    write_prepared(tmp_path, valid=90, frames=100)
    args = {"data_path": str(tmp_path), "p_interval": [0.5, 1.0], "random_rot": True, "seed": 1}
    joint = NTUFeeder(**args)[3][0]
    pairs = bone_pairs("ntu_rgb_d")
    np.testing.assert_array_equal(NTUFeeder(**args, bone=True)[3][0], to_bone(joint, pairs))
    np.testing.assert_array_equal(NTUFeeder(**args, vel=True)[3][0], to_motion(joint))
    np.testing.assert_array_equal(NTUFeeder(**args, bone=True, vel=True)[3][0], to_motion(to_bone(joint, pairs)))


def test_ntu_feeder_pickles_without_data_and_workers_agree(tmp_path):
    write_prepared(tmp_path, n=8, frames=300, valid=200)
    feeder = NTUFeeder(str(tmp_path), p_interval=[0.5, 1.0], random_rot=True, seed=2)
    clone = pickle.loads(pickle.dumps(feeder))
    assert len(pickle.dumps(feeder)) < 5_000  # the 1.4 MB sample array is reopened, not pickled
    np.testing.assert_array_equal(clone[5][0], feeder[5][0])
    serial = [batch[0] for batch in torch.utils.data.DataLoader(feeder, batch_size=3)]
    parallel = [batch[0] for batch in torch.utils.data.DataLoader(feeder, batch_size=3, num_workers=2)]
    for a, b in zip(serial, parallel, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ntu_debug_keeps_100_samples(tmp_path):
    write_prepared(tmp_path, n=103, frames=8, valid=8)
    feeder = NTUFeeder(str(tmp_path), debug=True, window_size=8, p_interval=[1.0])
    assert len(feeder) == 100 and len(feeder.sample_name) == 100
    with pytest.raises(IndexError):
        feeder[100]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"random_move": True}, r"random_move=True is not supported by mmcl"),
        ({"normalization": True}, r"normalization=True is not supported by mmcl"),
        ({"label_path": "data/train_label.pkl"}, r"label_path 'data/train_label\.pkl' is not used by mmcl"),
        ({"p_interval": [0.9, 0.5]}, r"p_interval must be"),
        ({"p_interval": 0.95}, r"p_interval must be"),
        ({"window_size": 0}, r"window_size must be a positive integer"),
    ],
)
def test_ntu_feeder_argument_errors(tmp_path, override, message):
    write_prepared(tmp_path)
    with pytest.raises(InputError, match=message):
        NTUFeeder(str(tmp_path), **override)


# ----------------------------------------------------------------------------- NW-UCLA feeder


def ucla_sequence(rng, frames):
    """A (T, 20, 3) sequence of float32-exact values (multiples of 1/8)."""
    return np.round(rng.normal(size=(frames, 20, 3)) * 8) / 8


def write_ucla(root, views=(1, 2, 3), per_view=3, seed=0):
    """JSON samples ``aAA_s01_eEE_vVV.json``; returns {name: (sequence, 1-based label)}."""
    rng = np.random.default_rng(seed)
    root.mkdir(exist_ok=True)
    samples = {}
    for view in views:
        for i in range(per_view):
            name = f"a{i + 1:02d}_s01_e{i:02d}_v{view:02d}"
            seq, label = ucla_sequence(rng, 5 + 4 * i + view), i + 1
            content = {"file_name": name, "skeletons": seq.tolist(), "label": label}
            (root / f"{name}.json").write_text(json.dumps(content))
            samples[name] = (seq, label)
    return samples


def expected_ucla_test_sample(seq, window):
    """The NW-UCLA test pipeline written out by hand: centre, per-axis min-max to [-1, 1], linspace frames."""
    centred = seq - seq[0, 1]
    low, high = centred.min(axis=(0, 1)), centred.max(axis=(0, 1))
    normalised = (centred - low) / (high - low) * 2 - 1
    picked = normalised[np.linspace(0, len(seq) - 1, window).astype(int)]
    return picked.transpose(2, 0, 1)[..., None].astype(np.float32)


def test_ucla_json_split_labels_and_test_values(tmp_path):
    samples = write_ucla(tmp_path / "ucla")
    train = UCLAFeeder(str(tmp_path / "ucla"), "train")
    test = UCLAFeeder(str(tmp_path / "ucla"), "test", window_size=10)
    assert train.sample_name == sorted(name for name in samples if not name.endswith("v03"))
    assert test.sample_name == sorted(name for name in samples if name.endswith("v03"))
    assert train.label.tolist() == [samples[name][1] - 1 for name in train.sample_name]
    count = len(train.sample_name)
    assert train.notes == [f"warning: NW-UCLA train split of {tmp_path / 'ucla'}: {count} samples, the standard "
                           f"release has 1020 ({1020 - count} fewer): check the folder"]
    x, label, index = test[2]
    assert x.shape == (3, 10, 20, 1) and x.dtype == np.float32 and (label, index) == (2, 2)
    np.testing.assert_allclose(x, expected_ucla_test_sample(samples[test.sample_name[2]][0], 10), atol=1e-6)


def test_ucla_train_augmentation_repeat_and_streams(tmp_path):
    write_ucla(tmp_path / "ucla")
    train = UCLAFeeder(str(tmp_path / "ucla"), "train", repeat=3, seed=4)
    assert len(train) == 18 and train[13][1:] == (train.label[1], 13)
    x = train[1][0]
    assert x.shape == (3, 52, 20, 1) and np.abs(x).max() <= 1 + 1e-6
    assert not np.allclose(x, train[7][0])  # the same row repeated gets other draws
    np.testing.assert_array_equal(x, UCLAFeeder(str(tmp_path / "ucla"), "train", seed=4)[1][0])
    train.set_epoch(1)
    assert not np.allclose(x, train[1][0])
    bone = UCLAFeeder(str(tmp_path / "ucla"), "train", seed=4, bone=True, vel=True)[1][0]
    np.testing.assert_allclose(bone, to_motion(to_bone(x, bone_pairs("ucla"))), atol=1e-6)


def test_ucla_prepared_folder_matches_json(tmp_path):
    samples = write_ucla(tmp_path / "ucla", views=(3,))
    names = sorted(samples)
    frames = max(len(samples[name][0]) for name in names)
    data = np.zeros((len(names), 3, frames, 20, 1), np.float32)
    for row, name in enumerate(names):
        seq = samples[name][0]
        data[row, :, : len(seq), :, 0] = seq.transpose(2, 0, 1)
    write_prepared_split(tmp_path / "prep", "test", data, [samples[n][1] - 1 for n in names], names)
    from_json = UCLAFeeder(str(tmp_path / "ucla"), "test")
    from_prepared = UCLAFeeder(str(tmp_path / "prep"), "test")
    assert from_prepared.sample_name == from_json.sample_name
    for i in range(len(names)):
        np.testing.assert_allclose(from_prepared[i][0], from_json[i][0], atol=1e-6)
        assert from_prepared[i][1] == from_json[i][1]


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", r"a01_s01_e00_v01\.json: malformed JSON"),
        (json.dumps({"file_name": "x", "label": 1}), r"a01_s01_e00_v01\.json: no 'skeletons' entry"),
        (json.dumps({"skeletons": np.zeros((4, 19, 3)).tolist(), "label": 1}), r"\[T\]\[20\]\[3\].*\(4, 19, 3\)"),
        (json.dumps({"skeletons": [[[0, 0, 0]] * 20, [[0, 0]] * 20], "label": 1}), r"must be a numeric"),
        (json.dumps({"skeletons": np.ones((4, 20, 3)).tolist(), "label": 0}), r"'label' must be an integer in 1\.\.10"),
    ],
)
def test_ucla_json_errors_name_the_file(tmp_path, content, message):
    write_ucla(tmp_path, views=(1,), per_view=2)
    (tmp_path / "a01_s01_e00_v01.json").write_text(content)
    with pytest.raises(InputError, match=message):
        UCLAFeeder(str(tmp_path), "train")


def test_ucla_folder_errors(tmp_path):
    with pytest.raises(InputError, match="no NW-UCLA files named"):
        UCLAFeeder(str(tmp_path), "train")
    write_ucla(tmp_path, views=(1,), per_view=1)
    with pytest.raises(InputError, match=r"no NW-UCLA file of view\(s\) \(3,\) for split 'test'"):
        UCLAFeeder(str(tmp_path), "test")
    with pytest.raises(InputError, match=r"splits are train, test, not 'val'"):
        UCLAFeeder(str(tmp_path), "val")


# ----------------------------------------------------------------------------- registry


def test_registry_builds_with_seed_and_checks_names(tmp_path):
    write_prepared(tmp_path)
    assert FEEDERS["feeders.feeder_ntu.Feeder"] is NTUFeeder and FEEDERS["feeders.feeder_ucla.Feeder"] is UCLAFeeder
    feeder = build_feeder("feeders.feeder_ntu.Feeder", {"data_path": str(tmp_path), "random_rot": True}, seed=7)
    assert isinstance(feeder, NTUFeeder) and feeder.seed == 7
    with pytest.raises(InputError, match=r"feeder: unknown name 'kinetics'; registered: ntu, ucla"):
        build_feeder("kinetics", {})
    with pytest.raises(InputError, match=r"feeder 'ntu': unknown argument 'windowsize'"):
        build_feeder("ntu", {"data_path": str(tmp_path), "windowsize": 64})
    with pytest.raises(InputError, match=r"unknown argument 'seed' \(the seed comes from the run's seed\)"):
        build_feeder("ucla", {"data_path": str(tmp_path), "seed": 1})
