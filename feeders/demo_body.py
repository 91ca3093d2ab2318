"""The demo's body model: a small kinematic person in the NTU RGB+D 25-joint layout, and its looks.

``Controls`` drive one actor per frame (pelvis shift, trunk and head pitch, wrist and ankle targets reached
by two-bone inverse kinematics, hand grip); :func:`pose_joints` turns them into joints, y up, metres, in the
actor frame (lateral = the person's left, up, forward). Performers (:func:`performer_body`) keep their size
and clothes across samples. Used by the demo's action programs and by its image-caption corpus.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from feeders.demo_render import Look

NUM_JOINTS, NUM_PERSONS = 25, 2

# 0-based NTU joints; limb lists are (left, right).
SPINE_BASE, SPINE_MID, NECK, HEAD, SPINE_SHOULDER = 0, 1, 2, 3, 20
SHOULDER, ELBOW, WRIST, HAND = [4, 8], [5, 9], [6, 10], [7, 11]
HAND_TIP, THUMB = [21, 23], [22, 24]
HIP, KNEE, ANKLE, FOOT = [12, 16], [13, 17], [14, 18], [15, 19]
_UPPER_BODY = [SPINE_MID, NECK, HEAD, SPINE_SHOULDER, *SHOULDER, *ELBOW, *WRIST, *HAND, *HAND_TIP, *THUMB]

# Body of a 1.7 m person (scaled by height / 1.7). Trunk-frame points are (lateral = the person's left, up,
# forward) relative to the spine base; the actor frame has the same axes with its origin on the floor.
PELVIS_HEIGHT = 0.95
_TRUNK = {SPINE_MID: (0.0, 0.25, 0.0), SPINE_SHOULDER: (0.0, 0.47, -0.01), NECK: (0.0, 0.55, 0.0)}
_NECK_TO_HEAD = np.array([0.0, 0.11, 0.02])
SHOULDERS = np.array([[0.19, 0.45, -0.01], [-0.19, 0.45, -0.01]])
_HIPS = np.array([[0.09, -0.04, 0.0], [-0.09, -0.04, 0.0]])
_UPPER_ARM, _FOREARM, _PALM, _FINGERS, _THUMB = 0.29, 0.25, 0.08, 0.07, 0.05
_THIGH, _SHIN = 0.43, 0.42
_ANKLE_TO_FOOT = np.array([0.0, -0.05, 0.12])
REST_WRISTS = SHOULDERS + np.array([[0.04, -0.52, 0.05], [-0.04, -0.52, 0.05]])
_REST_ANKLES = np.array([[0.10, 0.07, 0.0], [-0.10, 0.07, 0.0]])
_ARM_POLES = np.array([[0.5, -1.0, -0.3], [-0.5, -1.0, -0.3]])
_LEG_POLES = np.array([[0.15, 0.0, 1.0], [-0.15, 0.0, 1.0]])
_THUMB_HINT = np.array([0.0, 0.0, 1.0])
MOUTH = (0.0, 0.60, 0.10)
RIGHT_EAR = (-0.08, 0.665, 0.0)

# Kinect-like joint noise (m): hand tips and thumbs are the least reliable joints.
NOISE = np.full(NUM_JOINTS, 0.012)
NOISE[HAND_TIP + THUMB] = 0.025

SKINS = ((232, 196, 170), (204, 160, 128), (160, 114, 88), (112, 80, 62))
SHIRTS = ((92, 96, 108), (150, 150, 152), (64, 72, 96), (132, 112, 92), (172, 162, 142), (84, 102, 88), (112, 74, 74))
TROUSERS = ((52, 56, 70), (72, 72, 76), (100, 90, 80), (44, 44, 48), (86, 94, 110))
WALLS = ((202, 198, 188), (178, 184, 192), (192, 182, 166), (162, 170, 162), (206, 200, 206))
FLOORS = ((122, 106, 92), (96, 96, 102), (142, 132, 116), (110, 116, 106))


@dataclass
class Controls:
    """Per-frame drive of one actor over T frames; limb arrays are stacked (left, right)."""

    shift: np.ndarray  # (T, 3) pelvis displacement, actor frame
    pitch: np.ndarray  # (T,) forward bend of the trunk about the spine base (rad)
    head_pitch: np.ndarray  # (T,) forward nod of the head about the neck (rad)
    wrists: np.ndarray  # (2, T, 3) wrist targets, trunk frame
    ankles: np.ndarray  # (2, T, 3) ankle targets, actor frame
    arm_poles: np.ndarray  # (2, 3) directions the elbows bend towards, trunk frame
    grip: np.ndarray  # (2, T) 0 open hand .. 1 closed around an object
    hold: np.ndarray  # (T,) bool: the right hand holds the class's object (if it has one)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)  # place in the scene (lateral, up, forward)
    heading: float = 0.0  # yaw in the scene (rad); -pi/2 faces the scene's lateral axis


@dataclass(frozen=True)
class Body:
    """A performer: size (height / 1.7 m) and look."""

    scale: float
    look: Look


# ---------------------------------------------------------------- body model
def _two_bone_ik(
    root: np.ndarray, target: np.ndarray, upper: float, lower: float, pole: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Middle and end joints (..., 3) of a two-segment limb reaching from ``root`` towards ``target``.

    The limb bends towards ``pole``; an unreachable target is approached along the straight line.
    """
    axis = target - root
    distance = np.linalg.norm(axis, axis=-1, keepdims=True)
    direction = axis / np.maximum(distance, 1e-9)
    reach = np.clip(distance, abs(upper - lower) + 1e-4, upper + lower - 1e-4)
    along = (upper**2 - lower**2 + reach**2) / (2.0 * reach)
    height = np.sqrt(np.maximum(upper**2 - along**2, 0.0))
    bend = pole - np.sum(pole * direction, axis=-1, keepdims=True) * direction
    bend = bend / np.maximum(np.linalg.norm(bend, axis=-1, keepdims=True), 1e-9)
    return root + along * direction + height * bend, root + reach * direction


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _pitch(points: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate (lateral, up, forward) points about the lateral axis; positive ``angle`` tips up towards forward."""
    cos, sin = np.cos(angle), np.sin(angle)
    up, forward = points[..., 1], points[..., 2]
    return np.stack(np.broadcast_arrays(points[..., 0], up * cos - forward * sin, up * sin + forward * cos), axis=-1)


def pose_joints(ctl: Controls, s: float) -> np.ndarray:
    """Joints (T, 25, 3) in the actor frame for body scale ``s``."""
    frames = len(ctl.pitch)
    joints = np.zeros((frames, NUM_JOINTS, 3))
    for joint, point in _TRUNK.items():
        joints[:, joint] = np.asarray(point) * s
    joints[:, HEAD] = joints[:, NECK] + _pitch(_NECK_TO_HEAD * s, ctl.head_pitch)
    shoulders = SHOULDERS * s
    elbows, wrists = _two_bone_ik(shoulders[:, None], ctl.wrists, _UPPER_ARM * s, _FOREARM * s, ctl.arm_poles[:, None])
    forearm = _unit(wrists - elbows)
    thumb_dir = _unit(_THUMB_HINT - np.sum(_THUMB_HINT * forearm, axis=-1, keepdims=True) * forearm)
    hands = wrists + _PALM * s * forearm
    grip = ctl.grip[..., None]
    joints[:, SHOULDER] = shoulders
    joints[:, ELBOW] = elbows.swapaxes(0, 1)
    joints[:, WRIST] = wrists.swapaxes(0, 1)
    joints[:, HAND] = hands.swapaxes(0, 1)
    joints[:, HAND_TIP] = (hands + _FINGERS * s * _unit(forearm + 1.2 * grip * thumb_dir)).swapaxes(0, 1)
    joints[:, THUMB] = (hands + _THUMB * s * _unit(thumb_dir + 0.5 * forearm)).swapaxes(0, 1)
    pelvis = np.array([0.0, PELVIS_HEIGHT * s, 0.0]) + ctl.shift
    joints[:, _UPPER_BODY] = _pitch(joints[:, _UPPER_BODY], ctl.pitch[:, None]) + pelvis[:, None]
    joints[:, SPINE_BASE] = pelvis
    hips = pelvis[None] + _HIPS[:, None] * s
    knees, ankles = _two_bone_ik(hips, ctl.ankles, _THIGH * s, _SHIN * s, _LEG_POLES[:, None])
    joints[:, HIP] = hips.swapaxes(0, 1)
    joints[:, KNEE] = knees.swapaxes(0, 1)
    joints[:, ANKLE] = ankles.swapaxes(0, 1)
    joints[:, FOOT] = (ankles + _ANKLE_TO_FOOT * s).swapaxes(0, 1)
    return joints


def basis(yaw: float) -> np.ndarray:
    """Columns: camera-space directions of (lateral, up, forward) for a heading ``yaw`` (0 faces the camera)."""
    cos, sin = np.cos(yaw), np.sin(yaw)
    return np.array([[cos, 0.0, -sin], [0.0, 1.0, 0.0], [-sin, 0.0, -cos]])


def rest_controls(tau: np.ndarray, s: float, rng: np.random.Generator) -> Controls:
    """Standing with arms hanging, a little sway; the starting point of every program."""
    frames = len(tau)
    sway = np.sin(2.0 * np.pi * rng.uniform(0.5, 1.5) * tau[:, None] + rng.uniform(0.0, 2.0 * np.pi, 3))
    arms = 0.015 * s * np.sin(2.0 * np.pi * rng.uniform(0.5, 1.5) * tau[None] + rng.uniform(0.0, 2.0 * np.pi, (2, 1)))
    wrists = np.repeat(REST_WRISTS[:, None] * s, frames, axis=1)
    wrists[..., 2] += arms
    return Controls(
        shift=sway * np.array([0.008, 0.004, 0.006]) * s,
        pitch=np.zeros(frames),
        head_pitch=np.zeros(frames),
        wrists=wrists,
        ankles=np.repeat(_REST_ANKLES[:, None] * s, frames, axis=1),
        arm_poles=_ARM_POLES.copy(),
        grip=np.zeros((2, frames)),
        hold=np.ones(frames, dtype=bool),
    )


def trunk_point(point: np.ndarray, ctl: Controls, s: float) -> np.ndarray:
    """An actor-frame point (T, 3) in the trunk frame of an upright actor (pitch ignored)."""
    return point - ctl.shift - np.array([0.0, PELVIS_HEIGHT * s, 0.0])


def step_forward(ctl: Controls, forward: np.ndarray) -> None:
    """Walk the whole actor ``forward`` (T,) metres."""
    ctl.shift[:, 2] += forward
    ctl.ankles[..., 2] += forward


def random_body(rng: np.random.Generator) -> Body:
    """A body of random size (1.55 to 1.9 m) in random clothes from the palettes."""
    look = Look(
        skin=SKINS[rng.integers(len(SKINS))],
        shirt=SHIRTS[rng.integers(len(SHIRTS))],
        trousers=TROUSERS[rng.integers(len(TROUSERS))],
    )
    return Body(scale=rng.uniform(1.55, 1.9) / 1.7, look=look)


def performer_body(seed: int, performer: int) -> Body:
    """The body of a performer id: the same size and clothes in every class."""
    return random_body(np.random.default_rng([seed, 1, performer]))


def scene_joints(actors: Sequence[Controls], bodies: Sequence[Body], heading: float, floor: np.ndarray) -> np.ndarray:
    """Camera-space joints (T, P, 25, 3) of the actors, the scene turned by ``heading`` and its origin at ``floor``."""
    return np.stack(
        [
            floor + pose_joints(ctl, body.scale) @ basis(heading + ctl.heading).T
            + basis(heading) @ np.asarray(ctl.origin)
            for ctl, body in zip(actors, bodies, strict=True)
        ],
        axis=1,
    )
