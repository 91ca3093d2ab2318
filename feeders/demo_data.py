"""Synthetic multimodal demo dataset (DESIGN §4): NTU-layout skeletons, temporal RGB strips and VLM-style answers.

Every class is a motion program: a function of normalised time that drives a small kinematic body (pelvis
shift, trunk and head pitch, wrist and ankle targets reached by two-bone inverse kinematics) in the NTU
RGB+D 25-joint layout, y up, metres, about 3 m in front of a Kinect-like camera. Samples vary in body size,
speed, amplitude, phase, position, heading and length, carry Kinect-like joint noise, and are stored as the
NTU pipeline stores skeletons: centred on actor 1's middle of spine in the first frame, zero after the end,
the second person slot zero for one-person classes.

Two pairs of classes run the same program and differ only by a subtle cue that per-sample jitter and noise
partly hide (where the hand stops, how it grips, a head tilt), while the rendered strip shows the held
object and the answer says so: the setting in which co-learning with RGB and text can help a skeleton-only
model. Output layout: see ``generate_demo_dataset``.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.fileio import write_bytes_atomic, write_text_atomic
from feeders.demo_render import CAMERA, Backdrop, HeldObject, Look, encode_jpeg, render_strip
from feeders.prepared import write_meta, write_prepared_split

QUESTION = "Are the people holding objects?"
MANIFEST = "demo.json"
NUM_JOINTS, NUM_PERSONS = 25, 2
MAX_PERFORMERS = 999

# 0-based NTU joints; limb lists are (left, right).
SPINE_BASE, SPINE_MID, NECK, HEAD, SPINE_SHOULDER = 0, 1, 2, 3, 20
SHOULDER, ELBOW, WRIST, HAND = [4, 8], [5, 9], [6, 10], [7, 11]
HAND_TIP, THUMB = [21, 23], [22, 24]
HIP, KNEE, ANKLE, FOOT = [12, 16], [13, 17], [14, 18], [15, 19]
_UPPER_BODY = [SPINE_MID, NECK, HEAD, SPINE_SHOULDER, *SHOULDER, *ELBOW, *WRIST, *HAND, *HAND_TIP, *THUMB]

# Body of a 1.7 m person (scaled by height / 1.7). Trunk-frame points are (lateral = the person's left, up,
# forward) relative to the spine base; the actor frame has the same axes with its origin on the floor.
_PELVIS_HEIGHT = 0.95
_TRUNK = {SPINE_MID: (0.0, 0.25, 0.0), SPINE_SHOULDER: (0.0, 0.47, -0.01), NECK: (0.0, 0.55, 0.0)}
_NECK_TO_HEAD = np.array([0.0, 0.11, 0.02])
_SHOULDERS = np.array([[0.19, 0.45, -0.01], [-0.19, 0.45, -0.01]])
_HIPS = np.array([[0.09, -0.04, 0.0], [-0.09, -0.04, 0.0]])
_UPPER_ARM, _FOREARM, _PALM, _FINGERS, _THUMB = 0.29, 0.25, 0.08, 0.07, 0.05
_THIGH, _SHIN = 0.43, 0.42
_ANKLE_TO_FOOT = np.array([0.0, -0.05, 0.12])
_REST_WRISTS = _SHOULDERS + np.array([[0.04, -0.52, 0.05], [-0.04, -0.52, 0.05]])
_REST_ANKLES = np.array([[0.10, 0.07, 0.0], [-0.10, 0.07, 0.0]])
_ARM_POLES = np.array([[0.5, -1.0, -0.3], [-0.5, -1.0, -0.3]])
_LEG_POLES = np.array([[0.15, 0.0, 1.0], [-0.15, 0.0, 1.0]])
_THUMB_HINT = np.array([0.0, 0.0, 1.0])
_MOUTH = (0.0, 0.60, 0.10)
_RIGHT_EAR = (-0.08, 0.665, 0.0)

# Kinect-like joint noise (m): hand tips and thumbs are the least reliable joints.
_NOISE = np.full(NUM_JOINTS, 0.012)
_NOISE[HAND_TIP + THUMB] = 0.025
_REACH_JITTER = 0.025

_SKINS = ((232, 196, 170), (204, 160, 128), (160, 114, 88), (112, 80, 62))
_SHIRTS = ((92, 96, 108), (150, 150, 152), (64, 72, 96), (132, 112, 92), (172, 162, 142), (84, 102, 88), (112, 74, 74))
_TROUSERS = ((52, 56, 70), (72, 72, 76), (100, 90, 80), (44, 44, 48), (86, 94, 110))
_WALLS = ((202, 198, 188), (178, 184, 192), (192, 182, 166), (162, 170, 162), (206, 200, 206))
_FLOORS = ((122, 106, 92), (96, 96, 102), (142, 132, 116), (110, 116, 106))


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


Program = Callable[[np.ndarray, Sequence[Body], np.random.Generator], list[Controls]]


@dataclass(frozen=True)
class DemoClass:
    """An action class: name, motion program, number of people, object in actor 1's right hand (or None)."""

    name: str
    program: Program = field(repr=False)
    persons: int = 1
    held: str | None = None


# ---------------------------------------------------------------- time shaping
def _ramp(tau: np.ndarray, start: float, end: float) -> np.ndarray:
    """Smoothstep from 0 at ``start`` to 1 at ``end``."""
    x = np.clip((tau - start) / (end - start), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _bump(tau: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """0 before ``a``, rising to 1 at ``b``, held until ``c``, back to 0 at ``d``."""
    return _ramp(tau, a, b) - _ramp(tau, c, d)


def _phases(rng: np.random.Generator, a: float, b: float, c: float, d: float, jitter: float = 0.04) -> list[float]:
    """Bump phases moved by up to ``jitter`` each, kept in order inside [0, 1]."""
    moved = np.clip(np.array([a, b, c, d]) + rng.uniform(-jitter, jitter, 4), 0.0, 1.0)
    return np.maximum.accumulate(moved + np.arange(4) * 1e-3).tolist()


def _lerp(p: np.ndarray, q: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``p`` moved towards ``q`` by ``weight`` (T,), broadcast over the last (xyz) axis."""
    return p + (q - p) * weight[..., None]


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


def _pose(ctl: Controls, s: float) -> np.ndarray:
    """Joints (T, 25, 3) in the actor frame for body scale ``s``."""
    frames = len(ctl.pitch)
    joints = np.zeros((frames, NUM_JOINTS, 3))
    for joint, point in _TRUNK.items():
        joints[:, joint] = np.asarray(point) * s
    joints[:, HEAD] = joints[:, NECK] + _pitch(_NECK_TO_HEAD * s, ctl.head_pitch)
    shoulders = _SHOULDERS * s
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
    pelvis = np.array([0.0, _PELVIS_HEIGHT * s, 0.0]) + ctl.shift
    joints[:, _UPPER_BODY] = _pitch(joints[:, _UPPER_BODY], ctl.pitch[:, None]) + pelvis[:, None]
    joints[:, SPINE_BASE] = pelvis
    hips = pelvis[None] + _HIPS[:, None] * s
    knees, ankles = _two_bone_ik(hips, ctl.ankles, _THIGH * s, _SHIN * s, _LEG_POLES[:, None])
    joints[:, HIP] = hips.swapaxes(0, 1)
    joints[:, KNEE] = knees.swapaxes(0, 1)
    joints[:, ANKLE] = ankles.swapaxes(0, 1)
    joints[:, FOOT] = (ankles + _ANKLE_TO_FOOT * s).swapaxes(0, 1)
    return joints


def _basis(yaw: float) -> np.ndarray:
    """Columns: camera-space directions of (lateral, up, forward) for a heading ``yaw`` (0 faces the camera)."""
    cos, sin = np.cos(yaw), np.sin(yaw)
    return np.array([[cos, 0.0, -sin], [0.0, 1.0, 0.0], [-sin, 0.0, -cos]])


# ---------------------------------------------------------------- motion programs
def _rest(tau: np.ndarray, s: float, rng: np.random.Generator) -> Controls:
    """Standing with arms hanging, a little sway; the starting point of every program."""
    frames = len(tau)
    sway = np.sin(2.0 * np.pi * rng.uniform(0.5, 1.5) * tau[:, None] + rng.uniform(0.0, 2.0 * np.pi, 3))
    arms = 0.015 * s * np.sin(2.0 * np.pi * rng.uniform(0.5, 1.5) * tau[None] + rng.uniform(0.0, 2.0 * np.pi, (2, 1)))
    wrists = np.repeat(_REST_WRISTS[:, None] * s, frames, axis=1)
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


def _trunk_point(point: np.ndarray, ctl: Controls, s: float) -> np.ndarray:
    """An actor-frame point (T, 3) in the trunk frame of an upright actor (pitch ignored)."""
    return point - ctl.shift - np.array([0.0, _PELVIS_HEIGHT * s, 0.0])


def _step(ctl: Controls, forward: np.ndarray) -> None:
    """Walk the whole actor ``forward`` (T,) metres."""
    ctl.shift[:, 2] += forward
    ctl.ankles[..., 2] += forward


@dataclass(frozen=True)
class _Reach:
    """Where a hand-to-head program stops the right wrist (unscaled offset from a spot), grip and head tilt."""

    spot: tuple[float, float, float]
    offset: tuple[float, float, float]
    grip: tuple[float, float]
    tilt: tuple[float, float]


def _reach_head(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator, reach: _Reach) -> list[Controls]:
    """Bring the right hand to the face, hold it there, lower it."""
    s = bodies[0].scale
    ctl = _rest(tau, s, rng)
    raised = _bump(tau, *_phases(rng, 0.02, 0.3, 0.72, 0.98))
    target = (np.add(reach.spot, reach.offset) + rng.normal(0.0, _REACH_JITTER, 3)) * s
    ctl.wrists[1] = _lerp(ctl.wrists[1], target, raised)
    ctl.grip[1] = raised * rng.uniform(*reach.grip)
    ctl.head_pitch = -raised * rng.uniform(*reach.tilt)
    return [ctl]


def _throw(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Wind the right arm back over the shoulder, fling it forward (releasing the ball), recover."""
    s = bodies[0].scale
    ctl = _rest(tau, s, rng)
    amp = rng.uniform(0.8, 1.2)
    windup, fling, recover = _ramp(tau, 0.05, 0.4), _ramp(tau, 0.42, 0.55), _ramp(tau, 0.6, 0.95)
    back = (_SHOULDERS[1] + amp * np.array([-0.06, 0.22, -0.2])) * s
    front = (_SHOULDERS[1] + amp * np.array([0.06, 0.08, 0.48])) * s
    balance = (_SHOULDERS[0] + np.array([0.02, 0.02, 0.4])) * s
    rest = ctl.wrists.copy()
    ctl.wrists[1] = _lerp(_lerp(_lerp(rest[1], back, windup), front, fling), rest[1], recover)
    ctl.wrists[0] = _lerp(_lerp(rest[0], balance, windup), rest[0], recover)
    ctl.pitch = amp * (-0.12 * windup + 0.3 * fling - 0.18 * recover)
    ctl.grip[1] = 0.8 * (1.0 - fling)
    ctl.hold = tau < 0.5
    return [ctl]


def _wave(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Raise the right hand beside the head and swing it sideways a few times."""
    s = bodies[0].scale
    ctl = _rest(tau, s, rng)
    raised = _bump(tau, *_phases(rng, 0.05, 0.22, 0.8, 0.95))
    swing = 0.11 * s * rng.uniform(0.8, 1.2) * np.sin(2.0 * np.pi * rng.uniform(2.0, 4.0) * tau + rng.uniform(0, 6.3))
    target = (_SHOULDERS[1] + np.array([-0.14, 0.33, 0.06])) * s + swing[:, None] * np.array([1.0, 0.25, 0.0])
    ctl.wrists[1] = _lerp(ctl.wrists[1], target, raised)
    ctl.arm_poles[1] = (-1.0, -0.6, 0.1)
    return [ctl]


def _squat(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Squat down with the arms forward for balance, then stand up."""
    s = bodies[0].scale
    ctl = _rest(tau, s, rng)
    down = _bump(tau, *_phases(rng, 0.05, 0.35, 0.65, 0.95))
    ctl.shift[:, 1] -= rng.uniform(0.3, 0.42) * s * down
    ctl.shift[:, 2] -= 0.1 * s * down
    ctl.pitch = rng.uniform(0.3, 0.55) * down
    forward = (_SHOULDERS + np.array([0.0, -0.04, 0.45]))[:, None] * s
    ctl.wrists = _lerp(ctl.wrists, forward, down * rng.uniform(0.6, 1.0))
    return [ctl]


def _jump(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Crouch with the arms back, jump with the arms up, land in a crouch."""
    s = bodies[0].scale
    ctl = _rest(tau, s, rng)
    crouch, land = _bump(tau, 0.08, 0.25, 0.3, 0.38), _bump(tau, 0.56, 0.64, 0.7, 0.85)
    flight = np.sin(np.pi * np.clip((tau - 0.38) / 0.2, 0.0, 1.0))
    height = rng.uniform(0.15, 0.28) * s
    ctl.shift[:, 1] += height * flight - rng.uniform(0.1, 0.18) * s * crouch - rng.uniform(0.06, 0.14) * s * land
    ctl.ankles[..., 1] += 0.85 * height * flight
    ctl.pitch = 0.25 * crouch + 0.15 * land
    back = (_SHOULDERS + np.array([[0.05, -0.45, -0.25], [-0.05, -0.45, -0.25]]))[:, None] * s
    up = (_SHOULDERS + np.array([[0.1, 0.35, 0.2], [-0.1, 0.35, 0.2]]))[:, None] * s
    ctl.wrists = _lerp(_lerp(ctl.wrists, back, crouch), up, flight)
    return [ctl]


def _kick(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Swing the right leg back, kick forward and up, put it down; arms out for balance."""
    s = bodies[0].scale
    ctl = _rest(tau, s, rng)
    windup, kick = _bump(tau, 0.15, 0.3, 0.32, 0.42), _bump(tau, *_phases(rng, 0.36, 0.48, 0.52, 0.72, 0.02))
    amp = rng.uniform(0.8, 1.2)
    ctl.ankles[1] += s * (windup[:, None] * np.array([0.0, 0.12, -0.2]) + amp * kick[:, None] * np.array([0, 0.4, 0.5]))
    ctl.pitch = 0.05 * windup - 0.18 * amp * kick
    ctl.shift[:, 1] -= 0.03 * s * kick
    out = (_SHOULDERS + np.array([[0.25, -0.35, 0.1], [-0.25, -0.35, 0.1]]))[:, None] * s
    ctl.wrists = _lerp(ctl.wrists, out, kick)
    return [ctl]


def _pair(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator, gap: float) -> list[Controls]:
    """Two resting actors ``gap`` metres apart facing each other across the scene's lateral axis."""
    actors = [_rest(tau, body.scale, rng) for body in bodies]
    for ctl, side in zip(actors, (-1.0, 1.0), strict=True):
        ctl.origin, ctl.heading = (side * gap / 2.0, 0.0, 0.0), side * np.pi / 2.0
    return actors


def _shake_hands(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Step towards each other, shake right hands between the two, let go."""
    gap = rng.uniform(0.95, 1.15)
    actors = _pair(tau, bodies, rng, gap)
    shake = _bump(tau, *_phases(rng, 0.2, 0.38, 0.72, 0.9))
    pump = 0.04 * np.sin(2.0 * np.pi * rng.uniform(2.5, 4.0) * tau) * shake
    height = rng.uniform(0.95, 1.05) * np.mean([body.scale for body in bodies])
    meet = np.stack((np.zeros_like(tau), height + pump, np.full_like(tau, gap / 2.0 - 0.06)), axis=-1)
    for ctl, body in zip(actors, bodies, strict=True):
        _step(ctl, rng.uniform(0.08, 0.16) * _ramp(tau, 0.0, 0.3))
        ctl.wrists[1] = _lerp(ctl.wrists[1], _trunk_point(meet, ctl, body.scale), shake)
    return actors


def _push(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Actor 1 steps in and pushes actor 2's chest with both hands; actor 2 staggers back."""
    gap = rng.uniform(0.75, 0.9)
    pusher, pushed = actors = _pair(tau, bodies, rng, gap)
    contact = _bump(tau, *_phases(rng, 0.28, 0.42, 0.55, 0.72))
    recoil = rng.uniform(0.25, 0.4) * _ramp(tau, 0.4, 0.62)
    _step(pusher, rng.uniform(0.1, 0.2) * _ramp(tau, 0.2, 0.45))
    _step(pushed, -recoil)
    chest = np.stack(
        (np.zeros_like(tau), np.full_like(tau, 1.3 * bodies[1].scale), gap + recoil - 0.12), axis=-1
    )
    hands = _trunk_point(chest, pusher, bodies[0].scale)[None] + np.array([[0.12, 0, 0], [-0.12, 0, 0]])[:, None]
    pusher.wrists = _lerp(pusher.wrists, hands, contact)
    pusher.pitch = 0.15 * contact
    stagger = _bump(tau, 0.4, 0.5, 0.6, 0.85)
    pushed.pitch = -0.25 * stagger
    flail = (_SHOULDERS + np.array([[0.12, 0.05, 0.3], [-0.12, 0.05, 0.3]]))[:, None] * bodies[1].scale
    pushed.wrists = _lerp(pushed.wrists, flail, stagger)
    return actors


def _hug(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Step close, wrap the arms around each other's back (one arm high, one low), let go."""
    gap = rng.uniform(0.85, 1.0)
    actors = _pair(tau, bodies, rng, gap)
    approach = (gap - rng.uniform(0.3, 0.38)) / 2.0 * _ramp(tau, 0.05, 0.35)
    embrace = _bump(tau, *_phases(rng, 0.2, 0.42, 0.75, 0.93))
    for index, (ctl, body, partner) in enumerate(zip(actors, bodies, bodies[::-1], strict=True)):
        _step(ctl, approach)
        high, low = 1.32 * partner.scale, 1.08 * partner.scale
        heights = (low, high) if index == 0 else (high, low)
        backs = [
            np.stack((np.full_like(tau, side * 0.15), np.full_like(tau, h), gap - approach + 0.1), axis=-1)
            for side, h in zip((1.0, -1.0), heights, strict=True)
        ]
        ctl.wrists = _lerp(ctl.wrists, _trunk_point(np.stack(backs), ctl, body.scale), embrace)
        ctl.arm_poles = np.array([[1.0, -0.3, 0.0], [-1.0, -0.3, 0.0]])
        ctl.pitch = 0.08 * embrace
    return actors


_DRINK = _Reach(_MOUTH, (-0.03, -0.10, 0.08), grip=(0.3, 0.9), tilt=(0.0, 0.25))
_TOUCH_MOUTH = _Reach(_MOUTH, (-0.03, -0.10, 0.055), grip=(0.0, 0.6), tilt=(-0.05, 0.15))
_PHONE = _Reach(_RIGHT_EAR, (-0.065, -0.13, 0.02), grip=(0.2, 0.8), tilt=(-0.05, 0.1))
_TOUCH_EAR = _Reach(_RIGHT_EAR, (-0.045, -0.12, 0.01), grip=(0.0, 0.6), tilt=(-0.05, 0.1))

#: The classes, in label order.
DEMO_CLASSES: tuple[DemoClass, ...] = (
    DemoClass("drink water", partial(_reach_head, reach=_DRINK), held="cup"),
    DemoClass("touch the mouth", partial(_reach_head, reach=_TOUCH_MOUTH)),
    DemoClass("make a phone call", partial(_reach_head, reach=_PHONE), held="phone"),
    DemoClass("touch the ear", partial(_reach_head, reach=_TOUCH_EAR)),
    DemoClass("throw a ball", _throw, held="ball"),
    DemoClass("wave a hand", _wave),
    DemoClass("squat down", _squat),
    DemoClass("jump up", _jump),
    DemoClass("kick forward", _kick),
    DemoClass("shake hands", _shake_hands, persons=2),
    DemoClass("push someone", _push, persons=2),
    DemoClass("hug", _hug, persons=2),
)
#: Class pairs (object, no object) whose skeleton motion is one program: only a subtle cue tells them apart.
OBJECT_PAIRS: tuple[tuple[str, str], ...] = (("drink water", "touch the mouth"), ("make a phone call", "touch the ear"))

_ANSWERS: dict[str, tuple[str, ...]] = {
    "cup": ("Yes, the person is holding a cup.", "Yes, there is a red cup in the person's hand.",
            "Yes, they hold a cup up to the mouth."),
    "phone": ("Yes, the person is holding a phone.", "Yes, a green phone is held against the ear.",
              "Yes, the person has a mobile phone in hand."),
    "ball": ("Yes, the person is holding a ball.", "Yes, there is a blue ball in the person's hand.",
             "Yes, the person holds a ball, ready to throw it."),
    "one": ("No, the hands are empty.", "No, the person is not holding anything.",
            "No objects are visible in the person's hands."),
    "two": ("No, neither person is holding anything.", "No, both people have empty hands.",
            "No, the two people are not holding objects."),
}


# ---------------------------------------------------------------- samples
@dataclass
class DemoSample:
    """One generated sample: the stored arrays and answer, plus what the renderer needs."""

    name: str
    label: int
    data: np.ndarray  # (3, max_frames, 25, 2) float32, centred, zero-padded
    color: np.ndarray  # (max_frames, 2, 25, 2) float32 pixel coordinates, 0 where absent
    answer: str
    joints: np.ndarray  # (L, P, 25, 3) clean camera-space joints of the P people present
    looks: list[Look]
    objects: list[HeldObject]
    backdrop: Backdrop


def sample_name(performer: int, label: int) -> str:
    """NTU-style name ``S001C001PpppR001Aaaa`` (action id = label + 1)."""
    return f"S001C001P{performer:03d}R001A{label + 1:03d}"


def _performer(seed: int, performer: int) -> Body:
    """The body of a performer id: the same size and clothes in every class."""
    rng = np.random.default_rng([seed, 1, performer])
    look = Look(
        skin=_SKINS[rng.integers(len(_SKINS))],
        shirt=_SHIRTS[rng.integers(len(_SHIRTS))],
        trousers=_TROUSERS[rng.integers(len(_TROUSERS))],
    )
    return Body(scale=rng.uniform(1.55, 1.9) / 1.7, look=look)


def make_sample(seed: int, split_id: int, label: int, index: int, performer: int, max_frames: int) -> DemoSample:
    """Generate the ``index``-th sample of class ``label`` in a split, deterministically from the arguments."""
    spec = DEMO_CLASSES[label]
    rng = np.random.default_rng([seed, 2, split_id, label, index])
    bodies = [_performer(seed, performer + 1000 * person) for person in range(spec.persons)]
    length = int(rng.integers(max(2, round(0.4 * max_frames)), max_frames + 1))
    start, end = rng.uniform(0.0, 0.12), rng.uniform(0.88, 1.0)
    timeline = np.clip((np.linspace(0.0, 1.0, length) - start) / (end - start), 0.0, 1.0)
    tau = timeline ** np.exp(rng.uniform(-0.25, 0.25))
    actors = spec.program(tau, bodies, rng)

    heading = rng.uniform(-0.3, 0.3)
    floor = np.array([rng.uniform(-0.5, 0.5), -rng.uniform(0.8, 1.0), rng.uniform(2.9, 3.5) + 0.3 * (spec.persons - 1)])
    joints = np.stack(
        [
            floor + _pose(ctl, body.scale) @ _basis(heading + ctl.heading).T + _basis(heading) @ np.asarray(ctl.origin)
            for ctl, body in zip(actors, bodies, strict=True)
        ],
        axis=1,
    )
    noisy = joints + rng.normal(0.0, 1.0, joints.shape) * _NOISE[:, None]

    data = np.zeros((3, max_frames, NUM_JOINTS, NUM_PERSONS), dtype=np.float32)
    data[:, :length, :, : spec.persons] = (noisy - noisy[0, 0, SPINE_MID]).transpose(3, 0, 2, 1)
    color = np.zeros((max_frames, NUM_PERSONS, NUM_JOINTS, 2), dtype=np.float32)
    color[:length, : spec.persons] = CAMERA.project(noisy)
    objects = [HeldObject(spec.held, 0, HAND[1], WRIST[1], actors[0].hold)] if spec.held else []
    backdrop = Backdrop(
        wall=_WALLS[rng.integers(len(_WALLS))], floor=_FLOORS[rng.integers(len(_FLOORS))], camera_height=-floor[1]
    )
    answers = _ANSWERS[spec.held or ("one" if spec.persons == 1 else "two")]
    return DemoSample(
        name=sample_name(performer, label),
        label=label,
        data=data,
        color=color,
        answer=answers[rng.integers(len(answers))],
        joints=joints,
        looks=[body.look for body in bodies],
        objects=objects,
        backdrop=backdrop,
    )


def render_sample(sample: DemoSample, strip_panels: int, panel_size: int) -> np.ndarray:
    """The temporal RGB strip of a sample, person boxes cropped from its stored pixel coordinates."""
    length, persons = sample.joints.shape[:2]
    return render_strip(
        sample.joints, sample.color[:length, :persons].astype(np.float64), sample.looks, sample.objects,
        sample.backdrop, strip_panels, panel_size,
    )


# ---------------------------------------------------------------- dataset
def _check_positive(**values: int) -> None:
    """Raise InputError naming the first argument that is not a positive integer."""
    for key, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"demo dataset: {key} must be a positive integer, got {value!r}")


def _prune_strips(rgb_dir: Path, keep: set[str]) -> None:
    """Remove demo strips (NTU-named jpgs) left in ``rgb_dir`` by an earlier generation."""
    if not rgb_dir.is_dir():
        return
    pattern = re.compile(r"S\d{3}C\d{3}P\d{3}R\d{3}A\d{3}\.jpg")
    for path in rgb_dir.iterdir():
        if pattern.fullmatch(path.name) and path.name not in keep:
            path.unlink()
    if not any(rgb_dir.iterdir()):
        rgb_dir.rmdir()


def generate_demo_dataset(
    root: str | os.PathLike,
    num_train_per_class: int = 60,
    num_test_per_class: int = 20,
    max_frames: int = 100,
    seed: int = 0,
    with_rgb: bool = True,
    strip_panels: int = 5,
    panel_size: int = 96,
) -> dict:
    """Write the demo dataset to ``root`` and return its summary (also saved as ``demo.json``, written last).

    ``root`` receives our prepared skeleton format for splits ``train`` and ``test`` (docs/data_format.md,
    with ``<split>_color.npy`` pixel coordinates and ``meta.json``), ``rgb/<name>.jpg`` temporal RGB strips
    (``strip_panels`` panels of ``panel_size`` pixels, unless ``with_rgb`` is false), ``answers/<split>.jsonl``
    (``{"name", "question", "answer"}`` per line, in row order) and ``classes.txt``. Rows interleave the
    classes; performers are distinct per sample index and disjoint between train and test. Every file is
    written atomically and the same arguments give byte-identical files; ``demo.json`` is removed first and
    written last, so a folder that has it holds one whole generation (strips of earlier runs are pruned).
    """
    _check_positive(
        num_train_per_class=num_train_per_class, num_test_per_class=num_test_per_class,
        strip_panels=strip_panels,
    )
    if not isinstance(seed, int) or seed < 0:
        raise InputError(f"demo dataset: seed must be a non-negative integer, got {seed!r}")
    if not isinstance(max_frames, int) or max_frames < 10:
        raise InputError(f"demo dataset: max_frames must be an integer >= 10, got {max_frames!r}")
    if not isinstance(panel_size, int) or panel_size < 16:
        raise InputError(f"demo dataset: panel_size must be an integer >= 16, got {panel_size!r}")
    if num_train_per_class + num_test_per_class > MAX_PERFORMERS:
        raise InputError(
            f"demo dataset: num_train_per_class + num_test_per_class must be <= {MAX_PERFORMERS}"
            " (performer ids have 3 digits)"
        )
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).unlink(missing_ok=True)
    splits = {"train": (num_train_per_class, 1), "test": (num_test_per_class, num_train_per_class + 1)}
    strips: set[str] = set()
    for split_id, (split, (per_class, first_performer)) in enumerate(splits.items()):
        samples = [
            make_sample(seed, split_id, label, index, first_performer + index, max_frames)
            for index in range(per_class)
            for label in range(len(DEMO_CLASSES))
        ]
        if with_rgb:
            for sample in samples:
                image = render_sample(sample, strip_panels, panel_size)
                write_bytes_atomic(root / "rgb" / f"{sample.name}.jpg", encode_jpeg(image))
                strips.add(f"{sample.name}.jpg")
        lines = [json.dumps({"name": s.name, "question": QUESTION, "answer": s.answer}) + "\n" for s in samples]
        write_text_atomic(root / "answers" / f"{split}.jsonl", "".join(lines))
        write_prepared_split(
            root, split, np.stack([s.data for s in samples]), [s.label for s in samples], [s.name for s in samples],
            color=np.stack([s.color for s in samples]),
        )
    _prune_strips(root / "rgb", strips)
    write_text_atomic(root / "classes.txt", "".join(f"{spec.name}\n" for spec in DEMO_CLASSES))
    counts = {split: per_class * len(DEMO_CLASSES) for split, (per_class, _) in splits.items()}
    write_meta(root, "demo", len(DEMO_CLASSES), "ntu_rgb_d", counts)
    summary = {
        "args": {
            "num_train_per_class": num_train_per_class, "num_test_per_class": num_test_per_class,
            "max_frames": max_frames, "seed": seed, "with_rgb": with_rgb, "strip_panels": strip_panels,
            "panel_size": panel_size,
        },
        "classes": [spec.name for spec in DEMO_CLASSES],
        "held": {spec.name: spec.held for spec in DEMO_CLASSES if spec.held},
        "object_pairs": [list(pair) for pair in OBJECT_PAIRS],
        "question": QUESTION,
        "splits": counts,
    }
    write_text_atomic(root / MANIFEST, json.dumps(summary, indent=2) + "\n")
    return summary
