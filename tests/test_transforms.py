"""Per-sample skeleton transforms: crop lengths, torch-equal resize, rotation, bones, motion, NW-UCLA steps."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from feeders.bone_pairs import bone_pairs
from feeders.transforms import (
    crop_resize,
    minmax_normalise,
    random_rotation,
    resize_time,
    rotation_matrix,
    sample_rng,
    to_bone,
    to_motion,
    ucla_sample_frames,
    ucla_view_transform,
    valid_frame_count,
)


def ramp(valid: int, total: int = 300, joints: int = 25, persons: int = 2) -> np.ndarray:
    """(3, total, V, M) sample whose frame t < valid holds the value t + 1 everywhere, zeros after."""
    x = np.zeros((3, total, joints, persons), dtype=np.float32)
    x[:, :valid] = (np.arange(valid, dtype=np.float32) + 1)[None, :, None, None]
    return x


def recovered_crop(out: np.ndarray, window: int = 64) -> tuple[float, float]:
    """(start, length) of the crop a resized ramp came from, read off its first two frames (length >= window)."""
    length = (out[0, 1, 0, 0] - out[0, 0, 0, 0]) * window
    start = out[0, 0, 0, 0] - 1 - (0.5 * length / window - 0.5)
    return start, length


def test_valid_frame_count_uses_the_coordinate_sum():
    x = ramp(37)
    assert valid_frame_count(x) == 37
    x[:, 5] = 0
    x[0, 5, 0, 0], x[1, 5, 0, 0] = 2.0, -2.0  # non-zero entries summing to zero: not a valid frame
    assert valid_frame_count(x) == 36
    assert valid_frame_count(np.zeros((3, 10, 25, 2), np.float32)) == 0


def test_test_crop_is_centred_and_exact_when_no_resize_is_needed():
    x = ramp(70)
    out = crop_resize(x, 70, [0.9], 64)  # bias int(0.1 * 70 / 2) = 3 -> frames [3, 67): 64 frames
    assert out.dtype == np.float32 and out.shape == (3, 64, 25, 2)
    np.testing.assert_array_equal(out[0, :, 0, 0], np.arange(4, 68, dtype=np.float32))


def test_test_crop_length_then_resize():
    x = ramp(100)
    out = crop_resize(x, 100, [0.95], 64)  # bias int(2.5) = 2 -> frames [2, 98)
    np.testing.assert_allclose(out, resize_time(x[:, 2:98], 64), atol=0)
    start, length = recovered_crop(out)
    assert start == pytest.approx(2, abs=1e-4) and length == pytest.approx(96, abs=1e-3)


def test_train_crop_lengths_follow_the_interval_with_a_64_frame_floor():
    lengths, starts = [], []
    x = ramp(100)
    for seed in range(200):
        start, length = recovered_crop(crop_resize(x, 100, [0.5, 1.0], 64, np.random.default_rng(seed)))
        lengths.append(round(length))
        starts.append(round(start))
        assert abs(length - round(length)) < 1e-3 and abs(start - round(start)) < 1e-3
    lengths, starts = np.array(lengths), np.array(starts)
    assert lengths.min() == 64 and lengths.max() >= 98 and lengths.max() <= 100  # floor(100 p) lifted to 64
    assert (starts >= 0).all() and (starts + lengths <= 100).all() and len(set(starts)) > 10


def test_train_crop_of_a_long_sample_stays_within_valid_frames():
    x = ramp(300)
    lengths = []
    for seed in range(100):
        out = crop_resize(x, 300, [0.5, 1.0], 64, np.random.default_rng(seed))
        start, length = recovered_crop(out)
        lengths.append(length)
        assert 150 - 1e-3 <= length <= 300 + 1e-3 and start >= -1e-3 and start + length <= 300 + 1e-3
    assert min(lengths) < 170 and max(lengths) > 280


def test_train_crop_shorter_than_64_frames_uses_them_all():
    x = ramp(40)
    out = crop_resize(x, 40, [0.5, 1.0], 64, np.random.default_rng(0))
    assert out.min() == 1 and out.max() == 40  # never reaches the zero padding
    np.testing.assert_array_equal(out, resize_time(x[:, :40], 64))


def test_empty_sample_becomes_zeros():
    x = np.zeros((3, 300, 25, 2), np.float32)
    for p_interval in ([0.95], [0.5, 1.0]):
        out = crop_resize(x, valid_frame_count(x), p_interval, 64, np.random.default_rng(0))
        assert out.shape == (3, 64, 25, 2) and not out.any()


def test_crop_argument_errors():
    x = ramp(80)
    with pytest.raises(ValueError, match="one or two"):
        crop_resize(x, 80, [0.5, 0.7, 1.0], 64, np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng"):
        crop_resize(x, 80, [0.5, 1.0], 64)


@pytest.mark.parametrize(
    "length,window", [(1, 64), (5, 64), (40, 64), (64, 64), (100, 64), (300, 64), (300, 7), (20, 52)]
)
def test_resize_matches_torch_interpolate(length, window):
    x = np.random.default_rng(length).uniform(-1, 1, (3, length, 25, 2)).astype(np.float32)
    planes = torch.from_numpy(x).permute(0, 2, 3, 1).reshape(1, 1, 150, length)
    bilinear = F.interpolate(planes, size=(150, window), mode="bilinear", align_corners=False)
    linear = F.interpolate(planes[0], size=window, mode="linear", align_corners=False)
    ours = resize_time(x, window)
    for ref in (bilinear, linear):
        np.testing.assert_allclose(ours, ref.reshape(3, 25, 2, window).permute(0, 3, 1, 2).numpy(), rtol=0, atol=1e-6)


def explicit_rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, sx], [0, -sx, cx]])
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rz = np.array([[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_rotation_matrix_convention():
    np.testing.assert_allclose(rotation_matrix([0.0, 0.0, math.pi / 2]) @ [1, 0, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(rotation_matrix([math.pi / 2, 0.0, 0.0]) @ [0, 1, 0], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(rotation_matrix([0.1, -0.2, 0.25]), explicit_rotation(0.1, -0.2, 0.25), atol=1e-12)


def test_random_rotation_matches_explicit_matrix_and_keeps_bone_lengths():
    x = crop_resize(np.random.default_rng(1).normal(size=(3, 80, 25, 2)).astype(np.float32), 80, [1.0], 64)
    x[:, :, :, 1] = 0  # an absent second person
    out = random_rotation(x, 0.3, np.random.default_rng(5))
    angles = np.random.default_rng(5).uniform(-0.3, 0.3, size=3)
    expected = np.einsum("ij,jtvm->itvm", explicit_rotation(*angles), x.astype(np.float64))
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert not out[:, :, :, 1].any()
    pairs = bone_pairs("ntu_rgb_d")
    lengths_after, lengths_before = (np.linalg.norm(to_bone(y, pairs), axis=0) for y in (out, x))
    np.testing.assert_allclose(lengths_after, lengths_before, atol=1e-5)
    assert np.abs(out - x).max() > 0.01


def test_to_bone_on_a_tiny_array():
    x = np.arange(2 * 2 * 3 * 1, dtype=np.float32).reshape(2, 2, 3, 1) ** 2
    pairs = np.array([[0, 1], [1, 1], [2, 0]])
    out = to_bone(x, pairs)
    np.testing.assert_array_equal(out[:, :, 0], x[:, :, 0] - x[:, :, 1])
    np.testing.assert_array_equal(out[:, :, 1], 0)
    np.testing.assert_array_equal(out[:, :, 2], x[:, :, 2] - x[:, :, 0])


def test_to_motion_on_a_tiny_array():
    x = (np.arange(5, dtype=np.float32) ** 2)[None, :, None, None].repeat(2, axis=0)
    out = to_motion(x)
    np.testing.assert_array_equal(out[0, :, 0, 0], [1, 3, 5, 7, 0])
    assert out.shape == x.shape and out.dtype == np.float32


def test_bone_pairs_cover_every_joint_once():
    for graph, joints, zero_joint in (("ntu_rgb_d", 25, 20), ("graph.ntu_rgb_d.Graph", 25, 20), ("ucla", 20, 2)):
        pairs = bone_pairs(graph)
        assert sorted(pairs[:, 0]) == list(range(joints)) and pairs.max() == joints - 1
        assert pairs[pairs[:, 0] == zero_joint, 1] == zero_joint
    assert bone_pairs("ntu_rgb_d")[0].tolist() == [0, 1]


def test_ucla_view_transform_convention():
    seq = np.random.default_rng(0).normal(size=(4, 20, 3))
    out = ucla_view_transform(seq, 90, 0, 1.0)  # row (x, y, z) @ Rx(90 deg) = (x, -z, y)
    np.testing.assert_allclose(out, np.stack([seq[..., 0], -seq[..., 2], seq[..., 1]], axis=-1), atol=1e-12)
    ax, ay = math.radians(-35), math.radians(50)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), math.sin(ax)], [0, -math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, -math.sin(ay)], [0, 1, 0], [math.sin(ay), 0, math.cos(ay)]])
    expected = (seq.reshape(-1, 3) @ (ry @ (rx @ np.diag([1.3] * 3)))).reshape(seq.shape)
    np.testing.assert_allclose(ucla_view_transform(seq, -35, 50, 1.3), expected, atol=1e-12)


def test_minmax_normalise_per_axis_with_flat_axis():
    seq = np.zeros((2, 2, 3))
    seq[..., 0] = [[0, 1], [2, 4]]
    seq[..., 1] = [[-3, -1], [-2, -3]]
    seq[..., 2] = 7.0  # no spread
    out = minmax_normalise(seq)
    np.testing.assert_allclose(out[..., 0], [[-1, -0.5], [0, 1]])
    np.testing.assert_allclose(out[..., 1], [[-1, 1], [0, -1]])
    np.testing.assert_array_equal(out[..., 2], 0)


def test_ucla_sample_frames():
    np.testing.assert_array_equal(ucla_sample_frames(10, 4), [0, 3, 6, 9])
    np.testing.assert_array_equal(ucla_sample_frames(7, 52), np.linspace(0, 6, 52).astype(int))
    draws = ucla_sample_frames(3, 52, np.random.default_rng(2))
    assert draws.shape == (52,) and set(draws) == {0, 1, 2} and (np.diff(draws) >= 0).all()
    np.testing.assert_array_equal(draws, ucla_sample_frames(3, 52, np.random.default_rng(2)))


def test_sample_rng_depends_on_seed_epoch_and_index():
    draws = [sample_rng(*key).random() for key in ((0, 1, 2), (0, 1, 2), (0, 2, 1), (1, 1, 2), (0, 1, 3))]
    assert draws[0] == draws[1] and len(set(draws)) == 4
