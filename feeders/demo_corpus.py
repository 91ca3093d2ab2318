"""Image-caption pairs for pretraining the demo's CLIP-style encoders (``python -m tools.pretrain_demo_clip``).

A corpus apart from the demo's action samples: one or two people of random size and clothes hold a random
static pose (each arm down, at the face, raised, reaching forward or out to the side; upright, leaning or
crouching), the first person sometimes holding one of the demo's objects in the right hand. Each image is a
person crop rendered exactly as a panel of the demo's strips. Its caption says what is visible - the object
or empty hands, the shirt colour, where the hands are, the posture, how many people - and never an action.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feeders.demo_body import (
    FLOORS,
    HAND,
    MOUTH,
    RIGHT_EAR,
    SHIRTS,
    WALLS,
    WRIST,
    Controls,
    random_body,
    rest_controls,
    scene_joints,
)
from feeders.demo_render import CAMERA, Backdrop, HeldObject, render_panel

#: Colour words of the shirt palette, in palette order.
SHIRT_NAMES = ("dark grey", "light grey", "navy", "brown", "beige", "green", "maroon")
#: What the first person's right hand may hold, as a caption says it (None: empty hands).
OBJECT_PHRASES: dict[str | None, str] = {
    "cup": "holding a red cup",
    "phone": "holding a green phone",
    "ball": "holding a blue ball",
    None: "with empty hands",
}
_OBJECTS = list(OBJECT_PHRASES)
_OBJECT_ODDS = np.array([0.2, 0.2, 0.2, 0.4])

# Arm placements: name -> wrist target (trunk frame, unscaled) for the right arm; the left arm is mirrored.
_ARM_PLACES = {
    "down": None,
    "at the face": None,  # near the mouth or the ear, set per sample
    "raised": np.array([-0.12, 0.75, 0.08]),
    "forward": np.array([-0.1, 0.35, 0.5]),
    "out to the side": np.array([-0.7, 0.35, 0.05]),
}
_ARM_PHRASES = {
    "down": "{side} arm down",
    "at the face": "{side} hand at the face",
    "raised": "{side} hand raised above the head",
    "forward": "{side} arm reaching forward",
    "out to the side": "{side} arm out to the side",
}
_POSTURES = ("standing", "leaning forward", "crouching")
_POSTURE_ODDS = np.array([0.7, 0.15, 0.15])
_MIRROR = np.array([-1.0, 1.0, 1.0])


@dataclass(frozen=True)
class CorpusItem:
    """One rendered image (size, size, 3) uint8, its caption and the object held (None: empty hands)."""

    image: np.ndarray
    caption: str
    held: str | None


def _place_arm(ctl: Controls, arm: int, place: str, scale: float, rng: np.random.Generator) -> None:
    """Set ``arm``'s (0 left, 1 right) wrist target for ``place``, with a few centimetres of jitter."""
    if place == "down":
        return
    if place == "at the face":
        target = np.asarray(MOUTH if rng.random() < 0.5 else RIGHT_EAR) + np.array([-0.04, -0.11, 0.06])
    else:
        target = _ARM_PLACES[place]
    target = target * (_MIRROR if arm == 0 else 1.0) + rng.normal(0.0, 0.04, 3)
    ctl.wrists[arm] = target * scale
    if place == "raised":
        ctl.arm_poles[arm] = (-1.0 if arm else 1.0, -0.6, 0.1)


def _pose_actor(scale: float, posture: str, places: tuple[str, str], grip: float,
                rng: np.random.Generator) -> Controls:
    """A one-frame pose: resting body, arms placed, posture applied, right-hand grip set."""
    ctl = rest_controls(np.zeros(1), scale, rng)
    for arm, place in enumerate(places):
        _place_arm(ctl, arm, place, scale, rng)
    if posture == "leaning forward":
        ctl.pitch[:] = rng.uniform(0.3, 0.55)
    elif posture == "crouching":
        ctl.shift[:, 1] -= rng.uniform(0.25, 0.4) * scale
        ctl.pitch[:] = rng.uniform(0.1, 0.3)
    ctl.grip[1] = grip
    ctl.grip[0] = rng.uniform(0.0, 0.5)
    return ctl


def _caption(persons: int, shirt: str, held: str | None, places: tuple[str, str], posture: str,
             rng: np.random.Generator) -> str:
    """A caption of what the image shows: who, what they hold, then the other clauses in random order."""
    subject = "two people" if persons == 2 else str(rng.choice(["a person", "someone", "one person"]))
    arms = [_ARM_PHRASES[place].format(side=side) for side, place in zip(("left", "right"), places, strict=True)
            if place != "down"] or ["arms down"]
    clauses = [f"in a {shirt} shirt", *arms, posture]
    order = rng.permutation(len(clauses))
    return f"{subject} {OBJECT_PHRASES[held]}, " + ", ".join(clauses[i] for i in order) + "."


def with_object(item: CorpusItem, held: str | None) -> str:
    """``item``'s caption with its object phrase replaced by that of ``held`` (a counterfactual caption)."""
    return item.caption.replace(OBJECT_PHRASES[item.held], OBJECT_PHRASES[held], 1)


def make_corpus_item(seed: int, index: int, size: int) -> CorpusItem:
    """The ``index``-th image-caption pair of the corpus drawn with ``seed``, rendered at ``size`` pixels."""
    rng = np.random.default_rng([seed, 7, index])
    persons = 2 if rng.random() < 0.15 else 1
    bodies = [random_body(rng) for _ in range(persons)]
    held = _OBJECTS[rng.choice(len(_OBJECTS), p=_OBJECT_ODDS)]
    places = tuple(str(p) for p in rng.choice(list(_ARM_PLACES), size=2))
    posture = str(rng.choice(_POSTURES, p=_POSTURE_ODDS))
    grip = rng.uniform(0.6, 1.0) if held else rng.uniform(0.0, 0.5)
    actors = [_pose_actor(bodies[0].scale, posture, places, grip, rng)]
    if persons == 2:
        gap = rng.uniform(0.9, 1.3)
        actors.append(rest_controls(np.zeros(1), bodies[1].scale, rng))
        for ctl, side in zip(actors, (-1.0, 1.0), strict=True):
            ctl.origin, ctl.heading = (side * gap / 2.0, 0.0, 0.0), side * np.pi / 2.0
    heading = rng.uniform(-0.6, 0.6)
    floor = np.array([rng.uniform(-0.5, 0.5), -rng.uniform(0.8, 1.0), rng.uniform(2.9, 3.5) + 0.3 * (persons - 1)])
    joints = scene_joints(actors, bodies, heading, floor)[0]
    backdrop = Backdrop(wall=WALLS[rng.integers(len(WALLS))], floor=FLOORS[rng.integers(len(FLOORS))],
                        camera_height=-floor[1])
    objects = [HeldObject(held, 0, HAND[1], WRIST[1], np.ones(1, bool))] if held else []
    image = render_panel(joints, CAMERA.project(joints), [body.look for body in bodies], objects, backdrop, size)
    shirt = SHIRT_NAMES[SHIRTS.index(bodies[0].look.shirt)]
    return CorpusItem(image, _caption(persons, shirt, held, places, posture, rng), held)


