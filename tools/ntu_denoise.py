"""Denoise the bodies of a parsed NTU sequence and assign them to (at most) two actors.

The rules and constants are those of the reference NTU pipeline (CTR-GCN ``get_raw_denoised_data.py``),
reproduced value for value:

* a body's frames are taken as consecutive from its first appearance (``start .. start + T_b - 1``);
* with several bodies: motion = sum over x, y, z of the variance of the body's joints (float32);
  bodies seen in at most 11 frames are dropped; then, in order of appearance and while more than one
  body is left, a body whose share of noisy frames (x-range > 0.8 y-range of its joints) is at least
  0.69754 is dropped, otherwise its motion becomes min(motion, motion over its valid frames);
* bodies are ranked by motion (stable, largest first); actor 1 is the first; each following body joins
  actor 1 if its interval overlaps actor 1's hull by at most one frame, else actor 2 on the same test,
  else it is dropped; frames where every actor is missing (coordinate sum 0) are removed;
* a sequence with a single body keeps all its frames and is never denoised.

Colour coordinates follow the same frames as the joints and are 0 where an actor is absent.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from tools.ntu_raw import NUM_JOINTS, Body, RawSkeleton

MAX_NOISE_LENGTH = 11
SPREAD_RATIO = 0.8
MAX_NOISY_SHARE = 0.69754
ACTOR_WIDTH = NUM_JOINTS * 3


@dataclass(frozen=True)
class Actors:
    """A denoised sequence.

    ``joints`` (T, 75 or 150) float32: actor 1 then actor 2, each 25 joints x (x, y, z); ``colors``
    (T, 2, 25, 2) float32 colour pixels, 0 where an actor is absent.
    """

    joints: np.ndarray
    colors: np.ndarray

    @property
    def num_actors(self) -> int:
        """1 or 2: the number of actor slots in ``joints``."""
        return self.joints.shape[1] // ACTOR_WIDTH


def denoise(raw: RawSkeleton) -> Actors:
    """Select and place the actors of ``raw`` as the reference pipeline does."""
    if len(raw.bodies) == 1:
        return _place(raw, raw.bodies, width=ACTOR_WIDTH)
    ranked = rank_bodies(raw)
    width = ACTOR_WIDTH if len(ranked) == 1 else 2 * ACTOR_WIDTH
    return _remove_empty_frames(_place(raw, ranked, width))


def body_motion(joints: np.ndarray) -> np.float32:
    """Motion of a body: sum over x, y, z of the variance of all its joint positions (float32)."""
    return np.sum(np.var(joints.reshape(-1, 3), axis=0))


def valid_spread_frames(joints: np.ndarray) -> np.ndarray:
    """Mask of frames whose x-range is at most 0.8 times the y-range (compared in float64)."""
    x_range = np.ptp(joints[:, :, 0], axis=1).astype(np.float64)
    y_range = np.ptp(joints[:, :, 1], axis=1).astype(np.float64)
    return x_range <= SPREAD_RATIO * y_range


def rank_bodies(raw: RawSkeleton) -> list[Body]:
    """Bodies kept by the length and spread rules, largest motion first (ties keep appearance order)."""
    kept = [body for body in raw.bodies if len(body.frames) > MAX_NOISE_LENGTH]
    if not kept:
        raise InputError(f"sample {raw.name}: no body is tracked for more than {MAX_NOISE_LENGTH} frames")
    motion = {body.body_id: body_motion(body.joints) for body in kept}
    for body in list(kept):
        if len(kept) == 1:
            break
        valid = valid_spread_frames(body.joints)
        noisy = len(valid) - int(valid.sum())
        if noisy == 0:
            continue
        if noisy / len(valid) >= MAX_NOISY_SHARE:
            kept.remove(body)
        else:
            motion[body.body_id] = min(motion[body.body_id], body_motion(body.joints[valid]))
    return sorted(kept, key=lambda body: motion[body.body_id], reverse=True)


def _interval(body: Body) -> tuple[int, int]:
    start = int(body.frames[0])
    return start, start + len(body.frames) - 1


def _place(raw: RawSkeleton, ranked: list[Body] | tuple[Body, ...], width: int) -> Actors:
    """Write the ranked bodies into actor slots over ``raw.num_frames`` frames (``width`` 75: one body).

    A body joins the first slot whose hull it overlaps by at most one frame; the hulls start as actor
    1's interval and the reference's virtual [0, 0] for actor 2, and grow to cover what they receive.
    """
    joints = np.zeros((raw.num_frames, width), dtype=np.float32)
    colors = np.zeros((raw.num_frames, 2, NUM_JOINTS, 2), dtype=np.float32)
    hulls: list[tuple[int, int]] = [_interval(ranked[0]), (0, 0)]
    for rank, body in enumerate(ranked):
        start, end = _interval(body)
        slot = 0
        if rank > 0:
            free = [k for k, (lo, hi) in enumerate(hulls) if min(hi, end) - max(lo, start) <= 0]
            if not free:
                continue
            slot = free[0]
            hulls[slot] = (min(start, hulls[slot][0]), max(end, hulls[slot][1]))
        if end >= raw.num_frames:
            raise InputError(f"sample {raw.name}: body {body.body_id} has more entries than the sequence has frames")
        joints[start : end + 1, slot * ACTOR_WIDTH : (slot + 1) * ACTOR_WIDTH] = body.joints.reshape(-1, ACTOR_WIDTH)
        colors[start : end + 1, slot] = body.colors
    return Actors(joints=joints, colors=colors)


def _remove_empty_frames(actors: Actors) -> Actors:
    """Drop the frames whose joint coordinates sum to 0 (every actor missing)."""
    keep = actors.joints.sum(axis=1) != 0
    return Actors(joints=actors.joints[keep], colors=actors.colors[keep])
