"""Rendering skeleton frames as stick figures and composing temporal RGB strips (the demo's stand-in for video).

A virtual Kinect-like colour camera (pinhole, 1920x1080 pixels, x right, y up, z away from the camera) sees
one or two people in front of a textured wall and tiled floor. People are drawn as thick limbs, a torso
and a head disk in their clothes' colours, farthest part first; a held object is drawn at its hand joint.
Each panel is the person box of one frame, taken from the skeleton's colour-space joints as the real strip
builder crops video frames: only that window of the virtual frame is rasterised (supersampled, then
reduced to the panel size), which gives the same picture as rendering the whole frame and cropping it.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

Colour = tuple[int, int, int]

SUPERSAMPLE = 2
CROP_MARGIN = 0.15
JPEG_QUALITY = 90


@dataclass(frozen=True)
class PinholeCamera:
    """Colour camera: camera-space metres (x right, y up, z depth) to pixels (u right, v down)."""

    fx: float = 1050.0
    fy: float = 1050.0
    cx: float = 960.0
    cy: float = 540.0

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates (..., 2) of camera-space points (..., 3)."""
        depth = points[..., 2]
        return np.stack(
            (self.cx + self.fx * points[..., 0] / depth, self.cy - self.fy * points[..., 1] / depth), axis=-1
        )


CAMERA = PinholeCamera()


@dataclass(frozen=True)
class Look:
    """The colours one person is drawn in."""

    skin: Colour
    shirt: Colour
    trousers: Colour
    shoes: Colour = (38, 36, 40)


@dataclass(frozen=True)
class Backdrop:
    """The room: wall and floor colours, camera height above the floor and wall distance (metres)."""

    wall: Colour
    floor: Colour
    camera_height: float
    wall_depth: float = 5.0


@dataclass(frozen=True)
class ObjectStyle:
    """How a held object looks: colour, shape ('cup' upright box, 'slab' along the hand, 'disk'), size (m)."""

    colour: Colour
    shape: str
    size: tuple[float, float]


#: Saturated colours that no skin, clothes or backdrop colour comes near, so the objects stand out.
OBJECT_STYLES: dict[str, ObjectStyle] = {
    "cup": ObjectStyle((214, 34, 40), "cup", (0.13, 0.17)),
    "phone": ObjectStyle((34, 178, 76), "slab", (0.10, 0.19)),
    "ball": ObjectStyle((36, 96, 232), "disk", (0.2, 0.2)),
}


@dataclass(frozen=True)
class HeldObject:
    """An object in a hand: kind (a key of OBJECT_STYLES), holder, hand and wrist joints, (L,) frames shown."""

    kind: str
    person: int
    hand: int
    wrist: int
    visible: np.ndarray


# Limbs as joint chains (0-based NTU joints), the colour they are drawn in and their thickness in metres.
_LIMBS: tuple[tuple[tuple[int, ...], str, float], ...] = (
    ((12, 13, 14), "trousers", 0.15),
    ((14, 15), "shoes", 0.09),
    ((16, 17, 18), "trousers", 0.15),
    ((18, 19), "shoes", 0.09),
    ((4, 5), "shirt", 0.10),
    ((5, 6, 7, 21), "skin", 0.075),
    ((8, 9), "shirt", 0.10),
    ((9, 10, 11, 23), "skin", 0.075),
    ((20, 2), "skin", 0.09),
)
_TORSO_OUTLINE = (4, 8, 16, 12)
_TORSO_JOINTS = (0, 1, 4, 8, 12, 16, 20)
_SPINE = (0, 20)
_SPINE_WIDTH = 0.28
_HEAD, _HEAD_RADIUS = 3, 0.11
_WALL_STRIPE, _FLOOR_TILE = 0.3, 0.5


def panel_frames(length: int, panels: int) -> np.ndarray:
    """Frame indices of ``panels`` uniform times over a sequence of ``length`` frames (segment centres)."""
    return ((np.arange(panels) + 0.5) * length / panels).astype(np.int64)


def person_box(pixels: np.ndarray, margin: float = CROP_MARGIN) -> tuple[np.ndarray, float]:
    """Square crop around all joints ``pixels`` (..., 2): its top-left corner and side, ``margin`` per side."""
    points = pixels.reshape(-1, 2)
    low, high = points.min(axis=0), points.max(axis=0)
    side = float((high - low).max()) * (1.0 + 2.0 * margin) + 1.0
    return (low + high) / 2.0 - side / 2.0, side


def _grain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Fixed pseudo-random texture in [-1, 1] per frame pixel (a hash of the integer pixel position)."""
    hashed = (np.floor(u).astype(np.int64)[None, :] * 73856093) ^ (np.floor(v).astype(np.int64)[:, None] * 19349663)
    return (hashed & 255) / 127.5 - 1.0


def _background(backdrop: Backdrop, origin: np.ndarray, side: float, size: int) -> np.ndarray:
    """The ``size`` x ``size`` window of the virtual frame starting at pixel ``origin`` and ``side`` wide."""
    centres = (np.arange(size) + 0.5) * (side / size)
    u, v = origin[0] + centres, origin[1] + centres
    wall_x = (u - CAMERA.cx) * backdrop.wall_depth / CAMERA.fx
    wall_shade = 1.0 + 0.05 * np.cos(2.0 * np.pi * wall_x / _WALL_STRIPE)
    image = np.empty((size, size, 3))
    image[:] = wall_shade[:, None] * np.asarray(backdrop.wall, float)
    floor_rows = v > CAMERA.cy + CAMERA.fy * backdrop.camera_height / backdrop.wall_depth
    if floor_rows.any():
        depth = CAMERA.fy * backdrop.camera_height / (v[floor_rows] - CAMERA.cy)
        floor_x = (u[None, :] - CAMERA.cx) * depth[:, None] / CAMERA.fx
        tiles = (np.floor(floor_x / _FLOOR_TILE) + np.floor(depth / _FLOOR_TILE)[:, None]) % 2
        image[floor_rows] = (0.94 + 0.08 * tiles)[..., None] * np.asarray(backdrop.floor, float)
    image += 3.0 * _grain(u, v)[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def _chain(points: np.ndarray, colour: Colour, width: float) -> Callable[[ImageDraw.ImageDraw], None]:
    """Painter for a thick polyline with round ends."""

    def paint(draw: ImageDraw.ImageDraw) -> None:
        draw.line([tuple(p) for p in points.tolist()], fill=colour, width=max(1, round(width)), joint="curve")
        radius = width / 2.0
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)

    return paint


def _torso(points: np.ndarray, outline: np.ndarray, colour: Colour, width: float) -> Callable:
    """Painter for the torso: the shoulder-hip quadrilateral plus a thick spine (visible side-on)."""
    spine = _chain(points, colour, width)

    def paint(draw: ImageDraw.ImageDraw) -> None:
        draw.polygon([tuple(p) for p in outline.tolist()], fill=colour)
        spine(draw)

    return paint


def _disk(centre: np.ndarray, radius: float, colour: Colour) -> Callable[[ImageDraw.ImageDraw], None]:
    """Painter for a filled disk."""
    x, y = centre.tolist()
    return lambda draw: draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)


def _object(style: ObjectStyle, hand: np.ndarray, wrist: np.ndarray, metre: float) -> Callable:
    """Painter for a held object centred on the hand joint (a cup stays upright, a slab follows the hand)."""
    if style.shape == "disk":
        return _disk(hand, style.size[0] * metre / 2.0, style.colour)
    along = np.array([0.0, -1.0]) if style.shape == "cup" else hand - wrist
    along = along / max(float(np.linalg.norm(along)), 1e-6)
    across = np.array([-along[1], along[0]])
    half_w, half_h = style.size[0] * metre / 2.0, style.size[1] * metre / 2.0
    signs = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0]])
    corners = hand + signs[:, :1] * half_h * along + signs[:, 1:] * half_w * across
    return lambda draw: draw.polygon([tuple(p) for p in corners.tolist()], fill=style.colour)


def render_panel(
    joints: np.ndarray,
    box_pixels: np.ndarray,
    looks: Sequence[Look],
    objects: Sequence[HeldObject],
    backdrop: Backdrop,
    size: int,
) -> np.ndarray:
    """One panel (size, size, 3) uint8: the people ``joints`` (P, V, 3) in the crop box of ``box_pixels``.

    ``objects`` are the held objects visible in this frame.
    """
    origin, side = person_box(box_pixels)
    canvas = size * SUPERSAMPLE
    scale = canvas / side
    points = (CAMERA.project(joints) - origin) * scale
    metre = CAMERA.fx * scale / joints[..., 2]
    parts: list[tuple[float, Callable]] = []
    for person, look in enumerate(looks):
        xy, depth, px = points[person], joints[person, :, 2], metre[person]
        colours = {"skin": look.skin, "shirt": look.shirt, "trousers": look.trousers, "shoes": look.shoes}
        for chain, role, width in _LIMBS:
            idx = list(chain)
            parts.append((depth[idx].mean(), _chain(xy[idx], colours[role], width * px[idx].mean())))
        torso = list(_TORSO_JOINTS)
        painter = _torso(xy[list(_SPINE)], xy[list(_TORSO_OUTLINE)], look.shirt, _SPINE_WIDTH * px[torso].mean())
        parts.append((depth[torso].mean(), painter))
        parts.append((depth[_HEAD], _disk(xy[_HEAD], _HEAD_RADIUS * px[_HEAD], look.skin)))
    for held in objects:
        hand, wrist = points[held.person, held.hand], points[held.person, held.wrist]
        painter = _object(OBJECT_STYLES[held.kind], hand, wrist, metre[held.person, held.hand])
        parts.append((joints[held.person, held.hand, 2] - 0.1, painter))
    background = _background(backdrop, origin, side, size)
    image = Image.fromarray(background).resize((canvas, canvas), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    for _, paint in sorted(parts, key=lambda part: -part[0]):
        paint(draw)
    return np.asarray(image.reduce(SUPERSAMPLE))


def render_strip(
    joints: np.ndarray,
    pixels: np.ndarray,
    looks: Sequence[Look],
    objects: Sequence[HeldObject],
    backdrop: Backdrop,
    panels: int,
    panel_size: int,
) -> np.ndarray:
    """Temporal RGB strip (panel_size, panels * panel_size, 3) uint8 of one sample, panels left to right in time.

    ``joints`` (L, P, V, 3) are the camera-space joints of the P people drawn, over the sample's L frames;
    ``pixels`` (L, P, V, 2) their colour-camera coordinates, from which each panel's person box is cropped.
    """
    frames = panel_frames(len(joints), panels)
    return np.concatenate(
        [
            render_panel(
                joints[t], pixels[t], looks, [held for held in objects if held.visible[t]], backdrop, panel_size
            )
            for t in frames
        ],
        axis=1,
    )


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of an RGB uint8 image, without chroma subsampling (keeps small coloured objects crisp)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()
