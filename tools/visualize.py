"""Command: draw a skeleton sample as a contact sheet of stick figures (front and side views), PNG.

    python -m tools.visualize --data DIR [--split test] --name NAME [--frames 8] [--size 160] --out sample.png

``--data`` is a prepared folder, a CTR-GCN npz or the NW-UCLA JSON folder (anything ``--phase test`` reads:
the raw, untransformed rows are drawn). The sheet has ``--frames`` columns, frames taken at uniform times
over the sample's valid frames; the top row is the front view (x right, y up), the bottom row the side
view (z right, y up). Every person has its own colour; absent persons are skipped. The scale is fixed
over the whole sample, so motion and position stay comparable from frame to frame.
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


def draw_sheet(sample: np.ndarray, graph: str, frames: int, size: int) -> Image.Image:
    """The contact sheet of ``sample`` (C, T, V, M): ``frames`` columns, front and side views."""
    valid = valid_frame_count(sample)
    if valid == 0:
        raise InputError("the sample has no frame with a joint")
    chosen = frame_indices(valid, frames)
    pairs = bone_pairs(graph)
    present = np.abs(sample).sum(axis=(0, 1, 2)) > 0  # persons with any joint
    sheet = Image.new("RGB", (frames * size, len(VIEWS) * size), BACKGROUND)
    pen = ImageDraw.Draw(sheet)
    for row, (horizontal, vertical) in enumerate(VIEWS):
        points = sample[[horizontal, vertical]][:, :valid][..., present]  # (2, T, V, P)
        nonzero = np.abs(sample[:, :valid][..., present]).sum(0) > 0  # (T, V, P)
        low, high = points[:, nonzero].min(axis=1), points[:, nonzero].max(axis=1)
        scale = (1 - 2 * MARGIN) * size / max(float((high - low).max()), 1e-6)
        centre = (low + high) / 2
        for column, t in enumerate(chosen):
            origin = np.array([column * size + size / 2, row * size + size / 2])
            for person, colour in zip(range(points.shape[-1]), PERSON_COLOURS):
                joints = points[:, t, :, person].T  # (V, 2)
                shown = nonzero[t, :, person]
                xy = origin + (joints - centre) * scale * np.array([1, -1])
                for child, parent in pairs:
                    if child != parent and shown[child] and shown[parent]:
                        pen.line([tuple(xy[child]), tuple(xy[parent])], fill=colour, width=max(size // 60, 1))
                for x, y in xy[shown]:
                    radius = max(size / 80, 1)
                    pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
            pen.text((column * size + 4, row * size + 2), f"t={t}", fill=(90, 90, 90))
    return sheet


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="prepared folder, CTR-GCN npz or NW-UCLA JSON folder")
    parser.add_argument("--split", default="test", help="split holding the sample (default: test)")
    parser.add_argument("--name", required=True, help="sample name")
    parser.add_argument("--frames", type=int, default=8, help="frames to draw (default 8)")
    parser.add_argument("--size", type=int, default=160, help="side of each panel in pixels (default 160)")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.size < 16:
        raise InputError(f"--frames must be >= 1 and --size >= 16, got {args.frames} and {args.size}")
    sample, graph = read_sample(args.data, args.split, args.name)
    sheet = draw_sheet(sample, graph, args.frames, args.size)
    with atomic_path(args.out, suffix=".png") as tmp:
        sheet.save(tmp, format="PNG")
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
