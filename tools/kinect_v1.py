"""Kinect v1 skeletons (20 joints) -> a prepared test split in the NTU RGB+D 25-joint layout (docs/method.md §7).

Input joints follow UTD-MHAD's order (1-based): 1 head, 2 shoulder centre, 3 spine, 4 hip centre,
5-8 left shoulder / elbow / wrist / hand, 9-12 right shoulder / elbow / wrist / hand, 13-16 left hip /
knee / ankle / foot, 17-20 right hip / knee / ankle / foot. The Kinect SDK's own order (hip centre,
spine, shoulder centre, head, then the same 16 limb joints) is reordered to it with ``JOINT_ORDERS``.

Each NTU joint is the mean of its Kinect joints (1-based numbers on both sides):

| NTU joint                         | Kinect v1 joint(s)                |
|-----------------------------------|-----------------------------------|
| 1 spine base                      | 4 hip centre                      |
| 2 spine middle                    | 3 spine                           |
| 3 neck                            | mean of 2 shoulder centre, 1 head |
| 4 head                            | 1 head                            |
| 5-20 arms and legs                | 5-20 (same numbers)               |
| 21 spine shoulder                 | 2 shoulder centre                 |
| 22 left hand tip, 23 left thumb   | 8 left hand                       |
| 24 right hand tip, 25 right thumb | 12 right hand                     |

Camera-space joints (metres) project into the colour image with the Kinect SDK's pinhole model
(``project_kinect_v1``); the RGB strip tools crop persons with it.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from feeders.prepared import write_meta, write_prepared_split

NUM_KINECT_JOINTS = 20
NUM_NTU_JOINTS = 25
NUM_PERSONS = 2
#: NTU joint (1-based) -> the Kinect v1 joints (1-based, UTD order) it averages; the table above.
NTU_FROM_KINECT: dict[int, tuple[int, ...]] = {
    1: (4,),
    2: (3,),
    3: (2, 1),
    4: (1,),
    **{joint: (joint,) for joint in range(5, 21)},
    21: (2,),
    22: (8,),
    23: (8,),
    24: (12,),
    25: (12,),
}
#: For each input order, the 0-based input joint at each UTD position (UTD order is the identity).
JOINT_ORDERS: dict[str, tuple[int, ...]] = {
    "utd": tuple(range(NUM_KINECT_JOINTS)),
    "sdk": (3, 2, 1, 0, *range(4, NUM_KINECT_JOINTS)),
}
#: NTU joint (0-based) whose first-frame position becomes the origin: joint 2, the middle of the spine.
CENTRE_JOINT = 1
#: The split the zero-shot datasets are written as.
SPLIT = "test"
#: Nominal focal length of the Kinect v1 colour camera, in pixels of a 640 × 480 image.
KINECT_V1_COLOUR_FOCAL = 531.15
#: Size of the Kinect v1 colour frames (UTD-MHAD's and NW-UCLA's videos).
KINECT_V1_COLOUR_SIZE = (640, 480)


def _mapping_matrix() -> np.ndarray:
    """(25, 20) weights: row v averages the Kinect joints that NTU joint v + 1 is made of."""
    weights = np.zeros((NUM_NTU_JOINTS, NUM_KINECT_JOINTS))
    for ntu, sources in NTU_FROM_KINECT.items():
        weights[ntu - 1, [source - 1 for source in sources]] = 1.0 / len(sources)
    return weights


_TO_NTU = _mapping_matrix()


def kinect_to_ntu(joints: np.ndarray, order: str = "utd") -> np.ndarray:
    """Map a sequence (T, 20, 3) of Kinect v1 joints in ``order`` to (T, 25, 3) NTU joints (float64)."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_KINECT_JOINTS, 3):
        raise ValueError(f"Kinect v1 joints must be (T, {NUM_KINECT_JOINTS}, 3), got shape {joints.shape}")
    utd = joints[:, JOINT_ORDERS[order]]
    return np.einsum("vk,tkc->tvc", _TO_NTU, utd)


def project_kinect_v1(joints: np.ndarray, focal: float = KINECT_V1_COLOUR_FOCAL) -> np.ndarray:
    """Image position of camera-space joints (..., 3) in metres, as fractions of the width and height.

    The Kinect SDK's pinhole projection: ``u = 0.5 + f x / (640 z)``, ``v = 0.5 - f y / (480 z)`` with the
    focal length ``f`` in pixels of a 640 × 480 image. Joints that are all zero or not in front of the
    camera (z <= 0) come out as (0, 0), which ``SkeletonBoxes`` reads as absent.
    """
    joints = np.asarray(joints, dtype=np.float64)
    depth = joints[..., 2]
    present = (depth > 0) & np.isfinite(joints).all(-1)
    safe_depth = np.where(present, depth, 1.0)
    u = 0.5 + focal * joints[..., 0] / (640.0 * safe_depth)
    v = 0.5 - focal * joints[..., 1] / (480.0 * safe_depth)
    return np.where(present[..., None], np.stack([u, v], -1), 0.0).astype(np.float32)


def stack_ntu(sequences: Sequence[np.ndarray], order: str = "utd") -> np.ndarray:
    """Prepared-format data (N, 3, T_max, 25, 2) float32 from Kinect v1 sequences (T_i, 20, 3).

    Each sequence is mapped to NTU joints, centred on NTU joint 2 of its first frame, zero-padded to the
    longest sequence; the second person slot stays zero.
    """
    length = max(len(sequence) for sequence in sequences)
    data = np.zeros((len(sequences), 3, length, NUM_NTU_JOINTS, NUM_PERSONS), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        ntu = kinect_to_ntu(sequence, order)
        ntu -= ntu[0, CENTRE_JOINT]
        data[row, :, : len(ntu), :, 0] = ntu.transpose(2, 0, 1)
    return data


def stack_colour(sequences: Sequence[np.ndarray], order: str = "utd") -> np.ndarray:
    """Colour-camera pixels (N, T_max, 2, 25, 2) float32 of the NTU joints of Kinect v1 sequences (T_i, 20, 3).

    The uncentred joints are projected with ``project_kinect_v1`` into a 640 × 480 frame (the layout of
    NTU's ``<split>_color.npy``); padded frames, the empty second person and absent joints are 0.
    """
    length = max(len(sequence) for sequence in sequences)
    colour = np.zeros((len(sequences), length, NUM_PERSONS, NUM_NTU_JOINTS, 2), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        fractions = project_kinect_v1(kinect_to_ntu(sequence, order))
        colour[row, : len(sequence), 0] = fractions * np.array(KINECT_V1_COLOUR_SIZE, dtype=np.float32)
    return colour


def write_ntu_test_split(
    out: str | os.PathLike,
    dataset: str,
    num_class: int,
    sequences: Sequence[np.ndarray],
    labels: Sequence[int],
    names: Sequence[str],
    order: str = "utd",
    colour: bool = False,
) -> None:
    """Write ``OUT/test_*`` from Kinect v1 sequences (``stack_ntu``; with ``colour`` also the projected joints
    of ``stack_colour``) and then ``OUT/meta.json``."""
    out = Path(out)
    (out / "meta.json").unlink(missing_ok=True)
    pixels = stack_colour(sequences, order) if colour else None
    write_prepared_split(out, SPLIT, stack_ntu(sequences, order), labels, names, color=pixels)
    write_meta(out, dataset, num_class, "ntu_rgb_d", {SPLIT: len(names)})
