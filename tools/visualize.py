"""Command: draw a skeleton sample as stick figures (front and side views): a PNG contact sheet, a GIF, an MP4.

    python -m tools.visualize --data DIR [--split test] --name NAME [--frames 8] [--size 160] --out sample.png
    python -m tools.visualize --skeleton S001C001P001R001A050.skeleton --gif a.gif [--mp4 a.mp4] [--fps 15]
                              [--weights W [--config C] [config overrides]]

``--data`` is a prepared folder, a CTR-GCN npz or the NW-UCLA JSON folder (anything ``--phase test`` reads:
the raw, untransformed rows are drawn). The sheet has ``--frames`` columns, frames taken at uniform times
over the sample's valid frames; the top row is the front view (x right, y up), the bottom row the side
view (z right, y up). Every person has its own colour; absent persons are skipped. The scale is fixed
over the whole sample, so motion and position stay comparable from frame to frame.

``--skeleton`` reads a raw NTU ``.skeleton`` file through the NTU pipeline instead. ``--gif`` / ``--mp4``
animate every valid frame (or ``--frames`` of them), front and side view side by side, the persons in their
colours and the bones of the graph; with ``--weights`` (an NTU-layout model) the model's top-5 is the caption,
computed as ``tools.infer`` computes it. MP4 needs a PyAV build with an H.264 or MPEG-4 encoder.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine.errors import InputError, command
from engine.fileio import atomic_path
from feeders.bone_pairs import bone_pairs
from feeders.skeleton_store import open_split
from feeders.transforms import valid_frame_count
from feeders.ucla import is_prepared, read_json_folder

PERSON_COLOURS = ((214, 69, 65), (52, 120, 198), (60, 160, 80), (230, 150, 30))
BACKGROUND = (250, 250, 248)
VIEWS = ((0, 1), (2, 1))  # (horizontal, vertical) coordinate of the front and the side view
MARGIN = 0.08
SHEET_FRAMES = 8
CAPTION_LINE = 12  # pixels per caption line


def read_sample(data: str | Path, split: str, name: str) -> tuple[np.ndarray, str]:
    """Sample ``name`` as (C, T, V, M) and its graph name."""
    path = Path(data)
    if path.is_dir() and not is_prepared(path, split):  # the NW-UCLA JSON folder
        sequences, _, names = read_json_folder(path, split)
        if name in names:
            return sequences[names.index(name)].transpose(2, 0, 1)[..., None], "ucla"  # (T, V, 3) -> (3, T, V, 1)
    else:
        dataset = open_split(path, split)
        names, graph = dataset.names, dataset.graph or "ntu_rgb_d"
        if name in names:
            return np.asarray(dataset.data[names.index(name)], dtype=np.float64), graph
    raise InputError(f"{data}: split {split!r} has no sample {name!r}")


def frame_indices(valid: int, count: int) -> np.ndarray:
    """``count`` frames at uniform times over ``valid`` frames (segment centres)."""
    return ((np.arange(count) + 0.5) * valid / count).astype(np.int64)


class Views:
    """The front and side projections of one sample, at a scale fixed over its valid frames."""

    def __init__(self, sample: np.ndarray, size: int) -> None:
        self.valid = valid_frame_count(sample)
        if self.valid == 0:
            raise InputError("the sample has no frame with a joint")
        present = np.abs(sample).sum(axis=(0, 1, 2)) > 0  # persons with any joint
        self.nonzero = np.abs(sample[:, : self.valid][..., present]).sum(0) > 0  # (T, V, P)
        self.points, self.scales, self.centres = [], [], []
        for horizontal, vertical in VIEWS:
            points = sample[[horizontal, vertical]][:, : self.valid][..., present]  # (2, T, V, P)
            low, high = points[:, self.nonzero].min(axis=1), points[:, self.nonzero].max(axis=1)
            self.points.append(points)
            self.scales.append((1 - 2 * MARGIN) * size / max(float((high - low).max()), 1e-6))
            self.centres.append((low + high) / 2)
        self.size = size

    def draw(self, pen: ImageDraw.ImageDraw, pairs: list[tuple[int, int]], view: int, t: int,
             origin: np.ndarray) -> None:
        """Frame ``t`` in ``view`` (0 front, 1 side) as stick figures centred on ``origin`` (pixels)."""
        points = self.points[view]
        for person, colour in zip(range(points.shape[-1]), PERSON_COLOURS):
            shown = self.nonzero[t, :, person]
            xy = origin + (points[:, t, :, person].T - self.centres[view]) * self.scales[view] * np.array([1, -1])
            for child, parent in pairs:
                if child != parent and shown[child] and shown[parent]:
                    pen.line([tuple(xy[child]), tuple(xy[parent])], fill=colour, width=max(self.size // 60, 1))
            radius = max(self.size / 80, 1)
            for x, y in xy[shown]:
                pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)


def draw_sheet(sample: np.ndarray, graph: str, frames: int, size: int) -> Image.Image:
    """The contact sheet of ``sample`` (C, T, V, M): ``frames`` columns, front and side views."""
    views = Views(sample, size)
    pairs = bone_pairs(graph)
    sheet = Image.new("RGB", (frames * size, len(VIEWS) * size), BACKGROUND)
    pen = ImageDraw.Draw(sheet)
    for row in range(len(VIEWS)):
        for column, t in enumerate(frame_indices(views.valid, frames)):
            views.draw(pen, pairs, row, t, np.array([column * size + size / 2, row * size + size / 2]))
            pen.text((column * size + 4, row * size + 2), f"t={t}", fill=(90, 90, 90))
    return sheet


def draw_animation(sample: np.ndarray, graph: str, frames: int | None, size: int, caption: str = ""
                   ) -> list[Image.Image]:
    """One image per frame (all valid frames, or ``frames`` of them at uniform times): front and side view
    side by side, ``caption`` lines below."""
    views = Views(sample, size)
    pairs = bone_pairs(graph)
    lines = caption.splitlines()
    chosen = frame_indices(views.valid, frames) if frames else np.arange(views.valid)
    images = []
    for t in chosen:
        image = Image.new("RGB", (len(VIEWS) * size, size + CAPTION_LINE * len(lines)), BACKGROUND)
        pen = ImageDraw.Draw(image)
        for view in range(len(VIEWS)):
            views.draw(pen, pairs, view, t, np.array([view * size + size / 2, size / 2]))
        pen.text((4, 2), f"front   t={t}", fill=(90, 90, 90))
        pen.text((size + 4, 2), "side", fill=(90, 90, 90))
        for row, line in enumerate(lines):
            pen.text((4, size + row * CAPTION_LINE), line, fill=(20, 20, 20))
        images.append(image)
    return images


def read_skeleton_file(path: str | Path, duplicate_single: bool = False) -> np.ndarray:
    """A raw NTU ``.skeleton`` file through the NTU pipeline (as ``tools.infer`` reads it): (3, T, 25, 2)."""
    from tools.infer import read_samples  # deferred: the inference stack loads only for .skeleton files

    _, samples, failures = read_samples([path], duplicate_single)
    if failures:
        raise InputError(failures[0])
    return samples[0]


def top5_caption(sample_path: str, weights: str, config_path: str | None, overrides: list[str],
                 sample: np.ndarray | None) -> str:
    """The model's top-5 for one NTU-layout sample, through ``tools.infer`` (same pipeline as ``--phase test``):
    ``sample`` is a prepared row, or None to read ``sample_path`` as a ``.skeleton`` file."""
    from engine.checkpoint import read_torch_file
    from tools.infer import NTU120_CLASSES, infer, run_config, top_predictions

    content = read_torch_file(weights)
    config = run_config(content, weights, config_path, overrides)
    if sample is None:
        sample = read_skeleton_file(sample_path, config["model_args"].get("num_class") == NTU120_CLASSES)
    (top,) = top_predictions(infer(config, content, weights, [Path(sample_path).stem], [sample]), 5)
    labels = [p["name"] or f"class {p['class']}" for p in top]
    return "\n".join(f"{rank}. {label}  {100 * p['probability']:.1f}%"
                     for rank, (label, p) in enumerate(zip(labels, top), 1))


def write_gif(images: list[Image.Image], path: Path, fps: float) -> None:
    """An endlessly looping GIF of ``images`` at ``fps`` frames per second."""
    with atomic_path(path, suffix=".gif") as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=round(1000 / fps), loop=0)


def write_mp4(images: list[Image.Image], path: Path, fps: float) -> None:
    """An H.264 (else MPEG-4 part 2) video of ``images``, through PyAV."""
    import av  # deferred: only videos need it

    width, height = (images[0].width // 2 * 2, images[0].height // 2 * 2)  # even sides for yuv420p
    with atomic_path(path, suffix=".mp4") as tmp, av.open(str(tmp), "w", format="mp4") as container:
        for codec in ("libx264", "h264", "mpeg4"):
            try:
                stream = container.add_stream(codec, rate=round(fps))
                break
            except (av.FFmpegError, ValueError):
                continue
        else:
            raise InputError(f"{path}: this PyAV build has no H.264 or MPEG-4 encoder")
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in images:
            frame = av.VideoFrame.from_ndarray(np.asarray(image)[:height, :width], format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="prepared folder, CTR-GCN npz or NW-UCLA JSON folder (with --name)")
    source.add_argument("--skeleton", help="a raw NTU RGB+D .skeleton file")
    parser.add_argument("--split", default="test", help="split holding the sample (default: test)")
    parser.add_argument("--name", help="sample name, needed with --data (default: none)")
    parser.add_argument("--frames", type=int, help="frames to draw (default: 8 on the sheet, all in animations)")
    parser.add_argument("--size", type=int, default=160, help="side of each panel in pixels (default 160)")
    parser.add_argument("--out", type=Path, help="contact sheet PNG to write (default: none)")
    parser.add_argument("--gif", type=Path, help="animated GIF to write (default: none)")
    parser.add_argument("--mp4", type=Path,
                        help="MP4 video to write with PyAV (default: none); give at least one of --out, --gif, --mp4")
    parser.add_argument("--fps", type=float, default=15.0, help="animation frames per second (default 15)")
    parser.add_argument("--weights",
                        help="caption the animation with this model's top-5, NTU layout (default: no caption)")
    parser.add_argument("--config", help="the model's config for --weights (default: the one stored in it)")
    args, overrides = parser.parse_known_args(argv)
    if overrides and not args.weights:
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    if not (args.out or args.gif or args.mp4):
        raise InputError("nothing to write: give --out (contact sheet), --gif or --mp4")
    if (args.frames is not None and args.frames < 1) or args.size < 16 or args.fps <= 0:
        raise InputError(f"--frames must be >= 1, --size >= 16 and --fps > 0; got {args.frames}, {args.size}, "
                         f"{args.fps}")
    if args.data is not None and not args.name:
        raise InputError("--data needs --name (the sample to draw)")
    if args.skeleton is not None:
        sample, graph = read_skeleton_file(args.skeleton), "ntu_rgb_d"
    else:
        sample, graph = read_sample(args.data, args.split, args.name)
    if args.out is not None:
        sheet = draw_sheet(sample, graph, args.frames or SHEET_FRAMES, args.size)
        with atomic_path(args.out, suffix=".png") as tmp:
            sheet.save(tmp, format="PNG")
        print(f"wrote {args.out} ({sheet.width}x{sheet.height})")
    if args.gif or args.mp4:
        caption = ""
        if args.weights:
            prepared = None if args.skeleton else sample.astype(np.float32)
            caption = top5_caption(args.skeleton or args.name, args.weights, args.config, overrides, prepared)
        images = draw_animation(sample, graph, args.frames, args.size, caption)
        for path, writer in ((args.gif, write_gif), (args.mp4, write_mp4)):
            if path is not None:
                writer(images, path, args.fps)
                print(f"wrote {path} ({len(images)} frames, {images[0].width}x{images[0].height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
