"""Temporal RGB strips (docs/method.md §3): pick frames of a video, crop the person(s), resize, join left to right.

A strip is ``panels`` crops taken at uniform times over the video (a video file, or a folder of
``*_rgb.jpg`` frames as NW-UCLA ships them), each resized to ``size`` × ``size`` (plain resize, no
padding), concatenated in time order. The crop box of a frame comes from a ``BoxSource``: the skeleton's
colour-space joints (``SkeletonBoxes``), its 3D joints projected into the image (``ProjectedBoxes``) or a
person detector (``DetectorBoxes``). The boxes of a frame are united, grown by a margin, clipped to the
image; a frame without any box is used whole.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Protocol

import av
import numpy as np
import torch
from PIL import Image

from engine.errors import CORRUPT_FILE_ERRORS, InputError
from engine.fileio import atomic_path, one_line
from tools.kinect_v1 import KINECT_V1_COLOUR_FOCAL, project_kinect_v1

Box = tuple[float, float, float, float]  # x0, y0, x1, y1: corners in pixels
PERSON_LABEL = 1  # COCO "person" in torchvision detection models
JPEG_QUALITY = 95
#: Name ending of the colour frames in a frame folder (NW-UCLA: ``frame_<k>_tc_<timecode>_rgb.jpg``).
FRAME_SUFFIX = "_rgb.jpg"
_FIRST_NUMBER = re.compile(r"\d+")


class BoxSource(Protocol):
    """Where the person boxes of a video frame come from."""

    def boxes(self, frame_index: int, image: np.ndarray) -> list[Box]:
        """Boxes of the people in video frame ``frame_index`` (``image``: (H, W, 3) uint8 RGB); may be empty."""


def uniform_indices(frame_count: int, panels: int) -> np.ndarray:
    """The centre frame of each of ``panels`` equal segments of ``frame_count`` frames (sorted, may repeat)."""
    if frame_count < 1 or panels < 1:
        raise ValueError(f"need at least one frame and one panel, got {frame_count} frames, {panels} panels")
    return ((np.arange(panels) + 0.5) * frame_count / panels).astype(np.int64)


def colour_rows(frame_indices: np.ndarray, frame_count: int, valid_rows: int) -> np.ndarray:
    """Colour-array row of each video frame, by proportion (the NTU pipeline drops frames without bodies).

    Row ``t`` stands for frame ``round(t * (frame_count - 1) / max(valid_rows - 1, 1))``; this is its inverse.
    """
    scale = max(valid_rows - 1, 0) / max(frame_count - 1, 1)
    return np.clip(np.rint(np.asarray(frame_indices) * scale), 0, max(valid_rows - 1, 0)).astype(np.int64)


class SkeletonBoxes:
    """Boxes from the colour-space joints of one sample, ``colour`` (T, M, V, 2) pixels, 0 where absent.

    One box per actor present. A frame whose row has no joint takes the nearest row that has one (the
    earlier on a tie); a sample without any colour joint gives no boxes (``empty`` is then True).
    """

    def __init__(self, colour: np.ndarray, frame_count: int) -> None:
        colour = np.asarray(colour, dtype=np.float32)
        if colour.ndim != 4 or colour.shape[-1] != 2:
            raise ValueError(f"colour joints must be (T, M, V, 2), got shape {colour.shape}")
        self.present = np.isfinite(colour).all(-1) & (colour != 0).any(-1)  # (T, M, V)
        self.colour = colour
        self.rows_with_body = np.flatnonzero(self.present.any((1, 2)))
        self.valid_rows = int(self.rows_with_body[-1]) + 1 if self.rows_with_body.size else 0
        self.frame_count = frame_count

    @property
    def empty(self) -> bool:
        """True when the sample has no colour joint at all."""
        return self.rows_with_body.size == 0

    def row_for_frame(self, frame_index: int) -> int:
        """The row whose joints crop video frame ``frame_index``: its proportional row, or the nearest with a body."""
        if self.empty:
            raise ValueError("the sample has no colour joints")
        row = colour_rows(np.array([frame_index]), self.frame_count, self.valid_rows)[0]
        return int(self.rows_with_body[np.argmin(np.abs(self.rows_with_body - row))])

    def boxes(self, frame_index: int, image: np.ndarray) -> list[Box]:
        if self.empty:
            return []
        row = self.row_for_frame(frame_index)
        result = []
        for points, present in zip(self.colour[row], self.present[row]):
            if present.any():
                xy = points[present]
                low, high = xy.min(0), xy.max(0)
                result.append((float(low[0]), float(low[1]), float(high[0]), float(high[1])))
        return result


class ProjectedBoxes:
    """Boxes from the 3D joints of one sample, ``joints`` (T, M, V, 3) camera-space metres, 0 where absent.

    The joints are projected with ``project_kinect_v1`` and scaled to each frame's size; rows map to frames
    and absent rows are handled as in ``SkeletonBoxes``.
    """

    def __init__(self, joints: np.ndarray, frame_count: int, focal: float = KINECT_V1_COLOUR_FOCAL) -> None:
        joints = np.asarray(joints)
        if joints.ndim != 4 or joints.shape[-1] != 3:
            raise ValueError(f"3D joints must be (T, M, V, 3), got shape {joints.shape}")
        self.fractions = SkeletonBoxes(project_kinect_v1(joints, focal), frame_count)

    def boxes(self, frame_index: int, image: np.ndarray) -> list[Box]:
        height, width = image.shape[:2]
        return [
            (x0 * width, y0 * height, x1 * width, y1 * height)
            for x0, y0, x1, y1 in self.fractions.boxes(frame_index, image)
        ]


class DetectorBoxes:
    """Boxes of the ``max_people`` most confident persons found by a torchvision detection model."""

    def __init__(self, model: torch.nn.Module, score_threshold: float = 0.5, max_people: int = 2) -> None:
        self.model = model.eval()
        self.score_threshold = score_threshold
        self.max_people = max_people

    @torch.no_grad()
    def boxes(self, frame_index: int, image: np.ndarray) -> list[Box]:
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)
        found = self.model([tensor])[0]
        keep = (found["labels"] == PERSON_LABEL) & (found["scores"] >= self.score_threshold)
        order = torch.argsort(found["scores"][keep], descending=True)[: self.max_people]
        return [tuple(float(v) for v in box) for box in found["boxes"][keep][order]]


def load_person_detector(weights: str | os.PathLike, min_size: int = 800) -> torch.nn.Module:
    """Faster R-CNN ResNet-50 FPN (torchvision, COCO classes) with a local state dict; never downloads.

    Images are resized so that their short side is ``min_size`` (torchvision's default 800; smaller is
    faster on a CPU and enough for the large persons of NTU).
    """
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    max_size = round(min_size * 1333 / 800)  # torchvision's default aspect limit
    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=min_size, max_size=max_size)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as error:
        raise InputError(f"{weights}: cannot read detector weights ({str(error).splitlines()[0]})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise InputError(
            f"{weights}: not a fasterrcnn_resnet50_fpn state dict ({str(error).splitlines()[0]})"
        ) from None
    return model.eval()


def crop_box(boxes: Sequence[Box], width: int, height: int, margin: float) -> tuple[int, int, int, int] | None:
    """Union of ``boxes`` grown by ``margin`` × its size on every side, clipped to the image; None if empty."""
    if not boxes:
        return None
    array = np.asarray(boxes, dtype=np.float64)
    x0, y0 = array[:, :2].min(0)
    x1, y1 = array[:, 2:].max(0)
    grow_x, grow_y = margin * (x1 - x0), margin * (y1 - y0)
    left, top = int(np.clip(np.floor(x0 - grow_x), 0, width)), int(np.clip(np.floor(y0 - grow_y), 0, height))
    right, bottom = int(np.clip(np.ceil(x1 + grow_x), 0, width)), int(np.clip(np.ceil(y1 + grow_y), 0, height))
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom


def video_frame_count(container: av.container.InputContainer) -> int:
    """Frames of the first video stream: the header's count, else the number of video packets."""
    stream = container.streams.video[0]
    if stream.frames > 0:
        return int(stream.frames)
    count = sum(packet.size > 0 for packet in container.demux(stream))
    container.seek(0)
    return count


class ShortVideo(Exception):
    """The stream ended before a wanted frame: ``decoded`` frames were there (the header said more)."""

    def __init__(self, decoded: int) -> None:
        super().__init__(f"only {decoded} frames decode")
        self.decoded = decoded


def selected_frames(container: av.container.InputContainer, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Decode sequentially, yielding ``(index, RGB frame)`` for each wanted index in order (repeats too).

    Only the wanted frames are converted and none is kept. Raises ``ShortVideo`` if the stream ends
    before the last wanted index.
    """
    wanted = np.sort(np.asarray(indices))
    position, decoded = 0, 0
    for decoded, frame in enumerate(container.decode(video=0), start=1):
        index = decoded - 1
        if index < wanted[position]:
            continue
        image = frame.to_ndarray(format="rgb24")
        while position < len(wanted) and wanted[position] <= index:
            yield int(wanted[position]), image
            position += 1
        if position == len(wanted):
            return
    raise ShortVideo(decoded)


def frame_files(folder: str | os.PathLike) -> list[Path]:
    """The ``*_rgb.jpg`` frames of ``folder`` in time order: by the first number in the name, then the name.

    NW-UCLA numbers its frames without zero padding (``frame_2_…`` comes before ``frame_10_…``).
    """
    names = [entry.name for entry in os.scandir(folder) if entry.name.endswith(FRAME_SUFFIX)]

    def order(name: str) -> tuple[int, str]:
        number = _FIRST_NUMBER.search(name)
        return (int(number.group()) if number else -1, name)

    return [Path(folder) / name for name in sorted(names, key=order)]


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """One image file as (H, W, 3) uint8 RGB."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (*CORRUPT_FILE_ERRORS, Image.DecompressionBombError) as error:
        raise InputError(f"{path}: cannot read the frame ({one_line(error)})") from None


@dataclass(frozen=True)
class Strip:
    """A composed strip, the frame count its times were spread over, and its whole-frame panels."""

    image: np.ndarray  # (size, panels * size, 3) uint8
    frame_count: int
    whole_frames: int  # panels without a box, cropped as the whole frame
    header_frames: int | None = None  # the header's frame count when fewer frames decoded


def make_strip(
    video: str | os.PathLike,
    source_for: Callable[[int], BoxSource],
    panels: int = 5,
    size: int = 224,
    margin: float = 0.1,
) -> Strip:
    """Strip of ``video`` (a video file or a folder of ``*_rgb.jpg`` frames); ``source_for(frame_count)``
    gives the ``BoxSource`` once the length is known.

    A video whose header promises more frames than decode is read a second time, with the times spread
    over the frames that exist.
    """
    compose = partial(_compose, source_for=source_for, panels=panels, size=size, margin=margin)
    if Path(video).is_dir():
        files = frame_files(video)
        if not files:
            raise InputError(f"{video}: no *{FRAME_SUFFIX} frame")
        chosen = uniform_indices(len(files), panels)
        return compose(((int(index), read_frame(files[index])) for index in chosen), len(files))
    try:
        with _open(video) as container:
            header = video_frame_count(container)
            try:
                return compose(selected_frames(container, uniform_indices(max(header, 1), panels)), header)
            except ShortVideo as short:
                decoded = short.decoded
        if decoded == 0:
            raise InputError(f"{video}: no decodable frame")
        with _open(video) as container:
            frames = selected_frames(container, uniform_indices(decoded, panels))
            return replace(compose(frames, decoded), header_frames=header)
    except av.FFmpegError as error:
        raise InputError(f"{video}: cannot decode ({error})") from None


def _open(video: str | os.PathLike) -> av.container.InputContainer:
    try:
        container = av.open(str(video))
    except (av.FFmpegError, OSError) as error:
        raise InputError(f"{video}: cannot open video ({error})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{video}: no video stream")
    return container


def _compose(
    frames: Iterable[tuple[int, np.ndarray]],
    frame_count: int,
    source_for: Callable[[int], BoxSource],
    panels: int,
    size: int,
    margin: float,
) -> Strip:
    """Crop and join the chosen ``frames`` ((index, image) in time order) of a ``frame_count``-frame video."""
    source = source_for(frame_count)
    crops, whole = [], 0
    for index, image in frames:
        height, width = image.shape[:2]
        box = crop_box(source.boxes(index, image), width, height, margin)
        whole += box is None
        region = image if box is None else image[box[1] : box[3], box[0] : box[2]]
        crops.append(np.asarray(Image.fromarray(region).resize((size, size), Image.Resampling.BILINEAR)))
    return Strip(np.concatenate(crops, axis=1), frame_count, whole)


def save_jpeg(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write ``image`` (H, W, 3) uint8 RGB as a JPEG atomically."""
    with atomic_path(Path(path), suffix=".jpg") as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=JPEG_QUALITY)
