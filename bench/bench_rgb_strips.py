"""Benchmark: one temporal RGB strip from a 1920 × 1080 NTU-like video, ours vs decoding every frame to RGB.

    python -m bench.bench_rgb_strips [--frames 100] [--repeats 3]

Encodes a synthetic MPEG-4 AVI of a moving figure over a textured, noisy background at NTU's
resolution, then times, alternately on the same file: (a) the straightforward way, every frame decoded
and converted to an RGB array and kept (as a loop over ``cv2.VideoCapture.read`` into a list does), then
the chosen five cropped; (b) ``tools.rgb_strips.make_strip``, which converts only the chosen frames and
keeps none. Prints the medians, the ratio, the peak-RSS growth of each (in a fresh process), and the
NTU120 time (114,480 videos) extrapolated for one process and for a pool on all cores. Real footage
decodes more slowly than this synthetic scene, so the extrapolation is a lower bound.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import av
import numpy as np
from PIL import Image

from bench.memory import high_water_rss
from tools.rgb_strips import SkeletonBoxes, crop_box, make_strip, uniform_indices

WIDTH, HEIGHT, PANELS, SIZE, MARGIN = 1920, 1080, 5, 224, 0.1
NTU120_VIDEOS = 114_480


def write_video(path: Path, frames: int) -> np.ndarray:
    """A textured 1080p video with sensor-like noise and a red figure walking right; returns its colour
    joints (T, 1, 25, 2)."""
    colour = np.zeros((frames, 1, 25, 2), np.float32)
    rng = np.random.default_rng(0)
    texture = rng.integers(60, 196, size=(HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    background = np.repeat(np.repeat(texture, 8, axis=0), 8, axis=1)
    noise = rng.integers(-6, 7, size=(HEIGHT, WIDTH, 3), dtype=np.int16)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for t in range(frames):
            shifted = np.roll(noise, 7 * t, axis=1)
            image = np.clip(background + shifted, 0, 255).astype(np.uint8)
            x0 = 200 + 12 * t
            image[200:900, x0 : x0 + 300] = (220, 30, 30)
            colour[t, 0] = rng.uniform([x0, 200], [x0 + 300, 900], size=(25, 2))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return colour


def decode_all_then_crop(path: Path, colour: np.ndarray) -> np.ndarray:
    """Every frame to RGB, kept in a list, then the chosen frames cropped and joined."""
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    source = SkeletonBoxes(colour, len(frames))
    crops = []
    for index in uniform_indices(len(frames), PANELS):
        image = frames[index]
        box = crop_box(source.boxes(int(index), image), WIDTH, HEIGHT, MARGIN) or (0, 0, WIDTH, HEIGHT)
        region = Image.fromarray(image[box[1] : box[3], box[0] : box[2]])
        crops.append(np.asarray(region.resize((SIZE, SIZE), Image.Resampling.BILINEAR)))
    return np.concatenate(crops, axis=1)


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _strip_once(approach: str, video: Path, colour: np.ndarray) -> None:
    if approach == "decode all":
        decode_all_then_crop(video, colour)
    else:
        make_strip(video, lambda count: SkeletonBoxes(colour, count), PANELS, SIZE, MARGIN)


def _peak_growth(approach: str, video: Path, colour: np.ndarray) -> int:
    """In a fresh process: how much the peak RSS grows (bytes) while one strip is made."""
    before = high_water_rss()
    _strip_once(approach, video, colour)
    return high_water_rss() - before


def peak_growth(approach: str, video: Path, colour: np.ndarray) -> int:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_peak_growth, (approach, video, colour))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100,
                        help="video length; NTU averages about 100 (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds of each way (default: %(default)s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "S001C001P001R001A001_rgb.avi"
        colour = write_video(video, args.frames)
        ours = make_strip(video, lambda count: SkeletonBoxes(colour, count), PANELS, SIZE, MARGIN).image
        np.testing.assert_array_equal(ours, decode_all_then_crop(video, colour))  # the same strip
        approaches = ("decode all", "ours")
        times: dict[str, list[float]] = {name: [] for name in approaches}
        for _ in range(args.repeats):
            for name in approaches:
                times[name].append(timed(partial(_strip_once, name, video, colour)))
        peaks = {name: peak_growth(name, video, colour) for name in approaches}
    median = {name: statistics.median(values) for name, values in times.items()}
    cores = os.cpu_count() or 1
    print(f"one {WIDTH}x{HEIGHT} MPEG-4 video of {args.frames} frames, {PANELS} panels of {SIZE}px, "
          f"median of {args.repeats}")  # fmt: skip
    for name, seconds in median.items():
        print(f"{name:>10}: {seconds * 1000:7.1f} ms per video, peak RSS +{peaks[name] / 2**20:6.1f} MB")
    print(f"ratio: {median['decode all'] / median['ours']:.2f}x")
    hours = median["ours"] * NTU120_VIDEOS / 3600
    print(f"NTU120 ({NTU120_VIDEOS:,} videos) extrapolated: {hours:.1f} h in one process, "
          f"{hours / cores:.1f} h with {cores} workers")  # fmt: skip


if __name__ == "__main__":
    main()
