"""Synthetic NTU RGB+D ``.skeleton`` files in the real text format, for the tests and the benchmark.

A file is described frame by frame as a list of ``BodyFrame`` (body id, joints (25, 3), colour (25, 2));
everything else on the lines (depth pixels, orientation, tracking states) is filled in plausibly.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# A standing person, metres, Kinect v2 joint order (x right, y up); x-range 0.6 < 0.8 * y-range 1.6.
STANDING = np.array([
    [0.00, 0.00, 0.00], [0.00, 0.30, 0.00], [0.00, 0.55, 0.00], [0.00, 0.70, 0.00],
    [-0.18, 0.48, 0.00], [-0.25, 0.25, 0.02], [-0.28, 0.02, 0.04], [-0.29, -0.05, 0.05],
    [0.18, 0.48, 0.00], [0.25, 0.25, 0.02], [0.28, 0.02, 0.04], [0.29, -0.05, 0.05],
    [-0.08, -0.02, 0.00], [-0.09, -0.45, 0.01], [-0.10, -0.85, 0.00], [-0.10, -0.90, 0.08],
    [0.08, -0.02, 0.00], [0.09, -0.45, 0.01], [0.10, -0.85, 0.00], [0.10, -0.90, 0.08],
    [0.00, 0.48, 0.00], [-0.30, -0.12, 0.05], [-0.26, -0.07, 0.08], [0.30, -0.12, 0.05], [0.26, -0.07, 0.08],
])  # fmt: skip


@dataclass(frozen=True)
class BodyFrame:
    """One body in one frame."""

    body_id: str
    joints: np.ndarray  # (25, 3)
    colors: np.ndarray  # (25, 2)


@dataclass(frozen=True)
class Track:
    """A body over consecutive frames from ``start``; ``joints`` (T, 25, 3), ``colors`` (T, 25, 2)."""

    body_id: str
    start: int
    joints: np.ndarray
    colors: np.ndarray


def sample_name(setup: int = 1, camera: int = 1, performer: int = 1, replication: int = 1, action: int = 1) -> str:
    """NTU sample name ``SsssCcccPpppRrrrAaaa``."""
    return f"S{setup:03d}C{camera:03d}P{performer:03d}R{replication:03d}A{action:03d}"


def project(joints: np.ndarray) -> np.ndarray:
    """Colour-camera pixels (x, y) of camera-space joints (..., 3), a simple pinhole at 1920 x 1080."""
    depth = np.maximum(joints[..., 2], 0.5)
    return np.stack((960 + 1060 * joints[..., 0] / depth, 540 - 1060 * joints[..., 1] / depth), axis=-1)


def make_track(
    rng: np.random.Generator,
    body_id: str,
    start: int,
    length: int,
    amplitude: float = 0.05,
    lying: float = 0.0,
    offset: Sequence[float] = (0.0, 0.0, 3.0),
) -> Track:
    """A person drifting and moving its joints with ``amplitude`` (metres).

    In the first ``lying`` share of the frames the person lies (x and y swapped: a noisy spread).
    """
    down = np.arange(length) < round(lying * length)
    pose = np.where(down[:, None, None], STANDING[:, [1, 0, 2]], STANDING)
    drift = np.cumsum(rng.normal(0, amplitude / 4, (length, 1, 3)), axis=0)
    wobble = amplitude * np.sin(np.linspace(0, rng.uniform(2, 8), length))[:, None, None] * rng.normal(0, 1, (1, 25, 3))
    joints = pose + np.asarray(offset) + drift + wobble + rng.normal(0, 0.005, (length, 25, 3))
    return Track(body_id, start, joints, project(joints))


def steady_track(
    body_id: str, start: int, length: int, swing: float = 0.0, lying: bool = False, x: float = 0.0
) -> Track:
    """A deterministic person at ``x`` swaying sideways by ``swing`` metres (motion grows with ``swing``)."""
    pose = STANDING[:, [1, 0, 2]] if lying else STANDING
    sway = swing * np.sin(np.linspace(0, 2 * np.pi, length, endpoint=False))
    joints = pose + np.array([x, 0.0, 3.0]) + sway[:, None, None] * np.array([1.0, 0.0, 0.0])
    return Track(body_id, start, joints, project(joints))


def compose(num_frames: int, tracks: Sequence[Track], skip: Sequence[tuple[str, int]] = ()) -> list[list[BodyFrame]]:
    """Frames made of the tracks (frames no track covers have zero bodies); ``skip`` (id, frame) omits one."""
    frames: list[list[BodyFrame]] = [[] for _ in range(num_frames)]
    omitted = set(skip)
    for track in tracks:
        for k in range(len(track.joints)):
            if (track.body_id, track.start + k) not in omitted:
                frames[track.start + k].append(BodyFrame(track.body_id, track.joints[k], track.colors[k]))
    return frames


def skeleton_text(frames: Sequence[Sequence[BodyFrame]], joint_count: int | None = None) -> str:
    """The ``.skeleton`` text of ``frames``; ``joint_count`` overrides the joint-count line (for bad files)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body in bodies:
            lines.append(f"{body.body_id} 0 1 1 1 1 0 0.02764709 0.05745083 2")
            lines.append(str(joint_count if joint_count is not None else len(body.joints)))
            depth_px = body.colors / np.array([1920 / 512, 1080 / 424])
            for (x, y, z), (dx, dy), (cx, cy) in zip(body.joints, depth_px, body.colors):
                lines.append(f"{x:.7g} {y:.7g} {z:.7g} {dx:.7g} {dy:.7g} {cx:.7g} {cy:.7g} "
                             "-0.2633108 0.01031847 0.9641662 -0.02585611 2")  # fmt: skip
    return "\r\n".join(lines) + "\r\n"


def write_skeleton(path: str | os.PathLike, frames: Sequence[Sequence[BodyFrame]]) -> Path:
    """Write ``frames`` as a ``.skeleton`` file (CRLF line ends, as distributed)."""
    path = Path(path)
    path.write_bytes(skeleton_text(frames).encode("ascii"))
    return path


def body_id(rng: np.random.Generator) -> str:
    """A body id as Kinect writes them (a 17-digit integer beyond float64 precision)."""
    return str(72057594037900000 + int(rng.integers(0, 99999)))


def random_frames(rng: np.random.Generator, max_bodies: int = 4) -> list[list[BodyFrame]]:
    """A random multi-body sequence exercising every denoising rule.

    Bodies start and end at random frames (so intervals overlap or not), some last at most 11 frames,
    some lie down for all or part of the time (noisy spread), the first may vanish for a few frames;
    frames that no body covers are empty.
    """
    num_frames = int(rng.integers(30, 70))
    tracks = []
    ids = set()
    for _ in range(int(rng.integers(1, max_bodies + 1))):
        length = int(rng.integers(3, num_frames)) if rng.random() < 0.8 else int(rng.integers(1, 12))
        start = int(rng.integers(0, num_frames - length + 1))
        new_id = body_id(rng)
        while new_id in ids:
            new_id = body_id(rng)
        ids.add(new_id)
        tracks.append(make_track(rng, new_id, start, length, amplitude=float(rng.uniform(0.01, 0.2)),
                                 lying=float(rng.choice([0, 0, 0, 1, rng.uniform(0.1, 0.65)])),
                                 offset=(rng.uniform(-1, 1), 0.0, rng.uniform(2.5, 4))))
    first = tracks[0]
    gap = len(first.joints) > 8 and rng.random() < 0.3
    return compose(num_frames, tracks, [(first.body_id, first.start + k) for k in range(2, 5)] if gap else [])


def realistic_frames(rng: np.random.Generator, num_frames: int, num_bodies: int) -> list[list[BodyFrame]]:
    """One or two people present for the whole sequence (the common NTU case)."""
    tracks = [
        make_track(rng, str(72057594037931101 + k), 0, num_frames, amplitude=0.1, offset=(0.8 * k - 0.4, 0.0, 3.0))
        for k in range(num_bodies)
    ]
    return compose(num_frames, tracks)
