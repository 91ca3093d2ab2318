"""Per-sample skeleton transforms (docs/method.md §6) as pure, vectorised NumPy functions.

NTU-style functions take one sample laid out (C, T, V, M); the NW-UCLA ones take a sequence (T, V, 3).
Random functions draw only from the ``rng`` they are given, so a sample depends on its generator alone.
The channels are coordinates (x, y, z or x, y), optionally followed by a keypoint confidence ``score``
(2D poses, docs/custom_skeletons.md): rotations leave the score alone, and bones and motion average it as
pyskl does instead of differencing it.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

#: CTR-GCN's lower bound on the length of a random training crop, in frames.
MIN_TRAIN_CROP = 64


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one sample of one epoch: independent of worker count and visiting order."""
    return np.random.default_rng((seed, epoch, index))


def valid_frame_count(x: np.ndarray) -> int:
    """Number of frames of ``x`` (C, T, V, M) whose coordinate sum over (C, V, M) is non-zero."""
    per_joint = x.sum(axis=0).reshape(x.shape[1], -1)
    per_frame = per_joint @ np.ones(per_joint.shape[1], dtype=per_joint.dtype)  # matmul: far faster than sum(1)
    return int(np.count_nonzero(per_frame))


@functools.lru_cache(maxsize=1024)
def _linear_taps(length: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source frames and weights of torch's linear resize (align_corners=False) from ``length`` to ``window``.

    Follows torch's float32 CPU kernel, whose ``scale * (i + 0.5) - 0.5`` is one fused multiply-add (a single
    rounding, done here through float64), so the weights agree with torch's to the last bit or two.
    """
    f32 = np.float32
    step = np.float64(f32(length) / f32(window))
    centres = (np.arange(window, dtype=f32) + f32(0.5)).astype(np.float64)
    source = np.maximum((step * centres - 0.5).astype(f32), f32(0))
    lower = np.minimum(source.astype(np.intp), length - 1)
    upper = np.minimum(lower + 1, length - 1)
    high = np.clip(source - lower.astype(f32), f32(0), f32(1))
    taps = (lower, upper, (1 - high)[None, :, None, None], high[None, :, None, None])
    for array in taps:
        array.flags.writeable = False
    return taps


def resize_time(x: np.ndarray, window: int) -> np.ndarray:
    """Resize the time axis of ``x`` (C, T, V, M) to ``window`` frames by linear interpolation.

    Matches ``F.interpolate(mode='linear', align_corners=False)`` along T: two gathered frames and a lerp.
    """
    lower, upper, low_weight, high_weight = _linear_taps(x.shape[1], window)
    out = x[:, lower]
    out *= low_weight
    out += x[:, upper] * high_weight
    return out


def crop_resize(
    x: np.ndarray,
    valid: int,
    p_interval: Sequence[float],
    window: int,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Crop the first ``valid`` frames of ``x`` (C, T, V, M) and resize the crop to ``window`` frames (float32).

    One ``p`` gives the centred test crop of ``valid * p`` frames; two give the random training crop with
    ``p ~ U(p0, p1)``, at least ``MIN_TRAIN_CROP`` frames (at most ``valid``) at a random start. An empty
    sample (``valid == 0``) becomes zeros.
    """
    channels, _, joints, persons = x.shape
    if valid <= 0:
        return np.zeros((channels, window, joints, persons), dtype=np.float32)
    if len(p_interval) == 1:
        bias = int((1 - p_interval[0]) * valid / 2)
        start, length = bias, valid - 2 * bias
    elif len(p_interval) == 2:
        if rng is None:
            raise ValueError("a random training crop (two p values) needs an rng")
        p = rng.uniform(p_interval[0], p_interval[1])
        length = min(max(math.floor(valid * p), MIN_TRAIN_CROP), valid)
        start = int(rng.integers(0, valid - length + 1))
    else:
        raise ValueError(f"p_interval must hold one or two values, got {list(p_interval)}")
    crop = np.asarray(x[:, start : start + length], dtype=np.float32)
    return resize_time(crop, window)


def axis_rotation(axis: str, angle: float) -> np.ndarray:
    """The 3x3 rotation about ``axis`` ('x', 'y' or 'z') by ``angle`` radians in CTR-GCN's convention."""
    c, s = math.cos(angle), math.sin(angle)
    matrices = {
        "x": ((1, 0, 0), (0, c, s), (0, -s, c)),
        "y": ((c, 0, -s), (0, 1, 0), (s, 0, c)),
        "z": ((c, s, 0), (-s, c, 0), (0, 0, 1)),
    }
    return np.array(matrices[axis], dtype=np.float64)


def rotation_matrix(angles: Sequence[float]) -> np.ndarray:
    """``Rz @ Ry @ Rx`` for angles (x, y, z) in radians."""
    ax, ay, az = angles
    return axis_rotation("z", az) @ axis_rotation("y", ay) @ axis_rotation("x", ax)


def random_rotation(x: np.ndarray, theta: float, rng: np.random.Generator, score: bool = False) -> np.ndarray:
    """Rotate the coordinates of ``x`` (C, T, V, M), angles ~ U(-theta, theta).

    3D (x, y, z): ``Rz @ Ry @ Rx`` with one angle per axis; 2D (x, y): one angle in the image plane (the 2x2
    block of ``Rz``). With ``score`` the last channel is a confidence and is kept as it is.
    """
    coordinates = x.shape[0] - score
    if coordinates == 3:
        rotation = rotation_matrix(rng.uniform(-theta, theta, size=3))
    elif coordinates == 2:
        rotation = axis_rotation("z", rng.uniform(-theta, theta))[:2, :2]
    else:
        raise ValueError(f"a random rotation needs 2 or 3 coordinates per joint, got {coordinates}")
    rotated = (rotation.astype(x.dtype) @ x[:coordinates].reshape(coordinates, -1)).reshape(coordinates, *x.shape[1:])
    return np.concatenate((rotated, x[coordinates:])) if score else rotated


def to_bone(x: np.ndarray, pairs: np.ndarray, score: bool = False) -> np.ndarray:
    """Bones of ``x`` (C, T, V, M): ``b[:, :, v1] = x[:, :, v1] - x[:, :, v2]`` for 0-based ``pairs`` (P, 2).

    With ``score`` the last channel of a bone is the mean of its two joints' scores.
    """
    bones = np.zeros_like(x)
    child, parent = x[:, :, pairs[:, 0]], x[:, :, pairs[:, 1]]
    bones[:, :, pairs[:, 0]] = child - parent
    if score:
        bones[-1][:, pairs[:, 0]] = (child[-1] + parent[-1]) / 2
    return bones


def to_motion(x: np.ndarray, score: bool = False) -> np.ndarray:
    """Frame differences of ``x`` (C, T, ...): ``m[:, t] = x[:, t + 1] - x[:, t]``, the last frame zero.

    With ``score`` the last channel is the mean of the two frames' scores instead.
    """
    motion = np.zeros_like(x)
    np.subtract(x[:, 1:], x[:, :-1], out=motion[:, :-1])
    if score:
        np.add(x[-1, 1:], x[-1, :-1], out=motion[-1, :-1])
        motion[-1, :-1] /= 2
    return motion


def ucla_view_transform(seq: np.ndarray, agx_deg: float, agy_deg: float, scale: float) -> np.ndarray:
    """NW-UCLA view change of ``seq`` (T, V, 3): every row times ``Ry @ Rx @ S`` (CTR-GCN's feeder_ucla)."""
    matrix = (axis_rotation("y", math.radians(agy_deg)) @ axis_rotation("x", math.radians(agx_deg))) * scale
    return (seq.reshape(-1, 3) @ matrix).reshape(seq.shape)


def minmax_normalise(seq: np.ndarray) -> np.ndarray:
    """Map each coordinate axis of ``seq`` (T, V, 3) to [-1, 1] over all frames and joints.

    An axis with no spread maps to 0.
    """
    low = seq.min(axis=(0, 1))
    spread = seq.max(axis=(0, 1)) - low
    scale = np.divide(2.0, spread, out=np.zeros_like(spread), where=spread > 0)
    return np.where(spread > 0, (seq - low) * scale - 1.0, 0.0)


def ucla_sample_frames(length: int, window: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Frame indices for NW-UCLA: sorted random draws with replacement (train) or a uniform linspace (test)."""
    if rng is None:
        return np.linspace(0, length - 1, window).astype(int)
    return np.sort(rng.integers(0, length, size=window))
