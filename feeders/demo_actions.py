"""The demo's action classes: motion programs of normalised time that drive the body model.

Two pairs of classes run the same program and differ in the skeleton only by the grip (closed around the
object, open when empty: the hand tip to thumb distance differs by about 1.7 cm) and by where the hand stops
and the head tilt, which jitter hides, while the rendered strip shows the held object: the setting in which
co-learning with RGB and text could teach a skeleton-only model to read the grip. Four classes may carry an
object unrelated to the action (``incidental``): there the grip and the strip vary within the class.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from feeders.demo_body import MOUTH, RIGHT_EAR, SHOULDERS, Body, Controls, rest_controls, step_forward, trunk_point

Program = Callable[[np.ndarray, Sequence[Body], np.random.Generator], list[Controls]]
#: Where a reaching hand stops varies per sample by this much (m, standard deviation per axis).
REACH_JITTER = 0.025



@dataclass(frozen=True)
class DemoClass:
    """An action class: name, motion program, number of people, object in actor 1's right hand (or None), and
    whether actor 1 may carry an object that has nothing to do with the action (half of the samples)."""

    name: str
    program: Program = field(repr=False)
    persons: int = 1
    held: str | None = None
    incidental: bool = False



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
    ctl = rest_controls(tau, s, rng)
    raised = _bump(tau, *_phases(rng, 0.02, 0.3, 0.72, 0.98))
    target = (np.add(reach.spot, reach.offset) + rng.normal(0.0, REACH_JITTER, 3)) * s
    ctl.wrists[1] = _lerp(ctl.wrists[1], target, raised)
    ctl.grip[1] = raised * rng.uniform(*reach.grip)
    ctl.head_pitch = -raised * rng.uniform(*reach.tilt)
    return [ctl]


def _throw(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Wind the right arm back over the shoulder, fling it forward (releasing the ball), recover."""
    s = bodies[0].scale
    ctl = rest_controls(tau, s, rng)
    amp = rng.uniform(0.8, 1.2)
    windup, fling, recover = _ramp(tau, 0.05, 0.4), _ramp(tau, 0.42, 0.55), _ramp(tau, 0.6, 0.95)
    back = (SHOULDERS[1] + amp * np.array([-0.06, 0.22, -0.2])) * s
    front = (SHOULDERS[1] + amp * np.array([0.06, 0.08, 0.48])) * s
    balance = (SHOULDERS[0] + np.array([0.02, 0.02, 0.4])) * s
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
    ctl = rest_controls(tau, s, rng)
    raised = _bump(tau, *_phases(rng, 0.05, 0.22, 0.8, 0.95))
    swing = 0.11 * s * rng.uniform(0.8, 1.2) * np.sin(2.0 * np.pi * rng.uniform(2.0, 4.0) * tau + rng.uniform(0, 6.3))
    target = (SHOULDERS[1] + np.array([-0.14, 0.33, 0.06])) * s + swing[:, None] * np.array([1.0, 0.25, 0.0])
    ctl.wrists[1] = _lerp(ctl.wrists[1], target, raised)
    ctl.arm_poles[1] = (-1.0, -0.6, 0.1)
    return [ctl]


def _squat(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Squat down with the arms forward for balance, then stand up."""
    s = bodies[0].scale
    ctl = rest_controls(tau, s, rng)
    down = _bump(tau, *_phases(rng, 0.05, 0.35, 0.65, 0.95))
    ctl.shift[:, 1] -= rng.uniform(0.3, 0.42) * s * down
    ctl.shift[:, 2] -= 0.1 * s * down
    ctl.pitch = rng.uniform(0.3, 0.55) * down
    forward = (SHOULDERS + np.array([0.0, -0.04, 0.45]))[:, None] * s
    ctl.wrists = _lerp(ctl.wrists, forward, down * rng.uniform(0.6, 1.0))
    return [ctl]


def _jump(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Crouch with the arms back, jump with the arms up, land in a crouch."""
    s = bodies[0].scale
    ctl = rest_controls(tau, s, rng)
    crouch, land = _bump(tau, 0.08, 0.25, 0.3, 0.38), _bump(tau, 0.56, 0.64, 0.7, 0.85)
    flight = np.sin(np.pi * np.clip((tau - 0.38) / 0.2, 0.0, 1.0))
    height = rng.uniform(0.15, 0.28) * s
    ctl.shift[:, 1] += height * flight - rng.uniform(0.1, 0.18) * s * crouch - rng.uniform(0.06, 0.14) * s * land
    ctl.ankles[..., 1] += 0.85 * height * flight
    ctl.pitch = 0.25 * crouch + 0.15 * land
    back = (SHOULDERS + np.array([[0.05, -0.45, -0.25], [-0.05, -0.45, -0.25]]))[:, None] * s
    up = (SHOULDERS + np.array([[0.1, 0.35, 0.2], [-0.1, 0.35, 0.2]]))[:, None] * s
    ctl.wrists = _lerp(_lerp(ctl.wrists, back, crouch), up, flight)
    return [ctl]


def _kick(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Swing the right leg back, kick forward and up, put it down; arms out for balance."""
    s = bodies[0].scale
    ctl = rest_controls(tau, s, rng)
    windup, kick = _bump(tau, 0.15, 0.3, 0.32, 0.42), _bump(tau, *_phases(rng, 0.36, 0.48, 0.52, 0.72, 0.02))
    amp = rng.uniform(0.8, 1.2)
    ctl.ankles[1] += s * (windup[:, None] * np.array([0.0, 0.12, -0.2]) + amp * kick[:, None] * np.array([0, 0.4, 0.5]))
    ctl.pitch = 0.05 * windup - 0.18 * amp * kick
    ctl.shift[:, 1] -= 0.03 * s * kick
    out = (SHOULDERS + np.array([[0.25, -0.35, 0.1], [-0.25, -0.35, 0.1]]))[:, None] * s
    ctl.wrists = _lerp(ctl.wrists, out, kick)
    return [ctl]


def _pair(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator, gap: float) -> list[Controls]:
    """Two resting actors ``gap`` metres apart facing each other across the scene's lateral axis."""
    actors = [rest_controls(tau, body.scale, rng) for body in bodies]
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
        step_forward(ctl, rng.uniform(0.08, 0.16) * _ramp(tau, 0.0, 0.3))
        ctl.wrists[1] = _lerp(ctl.wrists[1], trunk_point(meet, ctl, body.scale), shake)
    return actors


def _push(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Actor 1 steps in and pushes actor 2's chest with both hands; actor 2 staggers back."""
    gap = rng.uniform(0.75, 0.9)
    pusher, pushed = actors = _pair(tau, bodies, rng, gap)
    contact = _bump(tau, *_phases(rng, 0.28, 0.42, 0.55, 0.72))
    recoil = rng.uniform(0.25, 0.4) * _ramp(tau, 0.4, 0.62)
    step_forward(pusher, rng.uniform(0.1, 0.2) * _ramp(tau, 0.2, 0.45))
    step_forward(pushed, -recoil)
    chest = np.stack(
        (np.zeros_like(tau), np.full_like(tau, 1.3 * bodies[1].scale), gap + recoil - 0.12), axis=-1
    )
    hands = trunk_point(chest, pusher, bodies[0].scale)[None] + np.array([[0.12, 0, 0], [-0.12, 0, 0]])[:, None]
    pusher.wrists = _lerp(pusher.wrists, hands, contact)
    pusher.pitch = 0.15 * contact
    stagger = _bump(tau, 0.4, 0.5, 0.6, 0.85)
    pushed.pitch = -0.25 * stagger
    flail = (SHOULDERS + np.array([[0.12, 0.05, 0.3], [-0.12, 0.05, 0.3]]))[:, None] * bodies[1].scale
    pushed.wrists = _lerp(pushed.wrists, flail, stagger)
    return actors


def _hug(tau: np.ndarray, bodies: Sequence[Body], rng: np.random.Generator) -> list[Controls]:
    """Step close, wrap the arms around each other's back (one arm high, one low), let go."""
    gap = rng.uniform(0.85, 1.0)
    actors = _pair(tau, bodies, rng, gap)
    approach = (gap - rng.uniform(0.3, 0.38)) / 2.0 * _ramp(tau, 0.05, 0.35)
    embrace = _bump(tau, *_phases(rng, 0.2, 0.42, 0.75, 0.93))
    for index, (ctl, body, partner) in enumerate(zip(actors, bodies, bodies[::-1], strict=True)):
        step_forward(ctl, approach)
        high, low = 1.32 * partner.scale, 1.08 * partner.scale
        heights = (low, high) if index == 0 else (high, low)
        backs = [
            np.stack((np.full_like(tau, side * 0.15), np.full_like(tau, h), gap - approach + 0.1), axis=-1)
            for side, h in zip((1.0, -1.0), heights, strict=True)
        ]
        ctl.wrists = _lerp(ctl.wrists, trunk_point(np.stack(backs), ctl, body.scale), embrace)
        ctl.arm_poles = np.array([[1.0, -0.3, 0.0], [-1.0, -0.3, 0.0]])
        ctl.pitch = 0.08 * embrace
    return actors


# A hand around an object is closed (grip 0.75-1: the hand tip folds ~4 cm towards the thumb), an empty hand
# open (0-0.3); where the hand stops and the head tilt differ by less than their jitter.
_DRINK = _Reach(MOUTH, (-0.03, -0.10, 0.08), grip=(0.75, 1.0), tilt=(0.0, 0.25))
_TOUCH_MOUTH = _Reach(MOUTH, (-0.03, -0.10, 0.055), grip=(0.0, 0.3), tilt=(-0.05, 0.15))
_PHONE = _Reach(RIGHT_EAR, (-0.065, -0.13, 0.02), grip=(0.75, 1.0), tilt=(-0.05, 0.1))
_TOUCH_EAR = _Reach(RIGHT_EAR, (-0.045, -0.12, 0.01), grip=(0.0, 0.3), tilt=(-0.05, 0.1))

#: The classes, in label order.
DEMO_CLASSES: tuple[DemoClass, ...] = (
    DemoClass("drink water", partial(_reach_head, reach=_DRINK), held="cup"),
    DemoClass("touch the mouth", partial(_reach_head, reach=_TOUCH_MOUTH)),
    DemoClass("make a phone call", partial(_reach_head, reach=_PHONE), held="phone"),
    DemoClass("touch the ear", partial(_reach_head, reach=_TOUCH_EAR)),
    DemoClass("throw a ball", _throw, held="ball"),
    DemoClass("wave a hand", _wave, incidental=True),
    DemoClass("squat down", _squat, incidental=True),
    DemoClass("jump up", _jump, incidental=True),
    DemoClass("kick forward", _kick, incidental=True),
    DemoClass("shake hands", _shake_hands, persons=2),
    DemoClass("push someone", _push, persons=2),
    DemoClass("hug", _hug, persons=2),
)
#: Class pairs (object, no object) whose skeleton motion is one program: only a subtle cue tells them apart.
OBJECT_PAIRS: tuple[tuple[str, str], ...] = (("drink water", "touch the mouth"), ("make a phone call", "touch the ear"))
