"""Command: NTU ``_rgb.avi`` videos -> one temporal RGB strip per sample (``<out>/<name>.jpg``, SPEC §3).

    python -m tools.make_rgb_strips --videos DIR [DIR ...] --prepared DIR --split train [--split test]
                                    --out DIR [--panels 5] [--size 224] [--margin 0.1] [--workers N]
                                    [--detector-weights FILE] [--detector-size 800]

The samples are the rows of ``<prepared>/<split>_names.txt``; sample ``NAME`` is read from
``NAME_rgb.avi`` in one of the video folders. Persons are cropped with the colour-space joints of
``<prepared>/<split>_color.npy``, or with a local Faster R-CNN when ``--detector-weights`` is given.
Samples whose strip exists are skipped (a re-run resumes); failures, whole-frame fallbacks and videos
shorter than their header are appended to ``<out>/strips_log.txt`` (name, tab, reason); the run goes on.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine.errors import InputError, command
from feeders.prepared import split_paths
from tools.rgb_strips import DetectorBoxes, SkeletonBoxes, load_person_detector, make_strip, save_jpeg

LOG_NAME = "strips_log.txt"
VIDEO_SUFFIX = "_rgb.avi"


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs besides the task."""

    prepared: Path
    out: Path
    panels: int
    size: int
    margin: float
    detector_weights: Path | None
    detector_size: int


@dataclass(frozen=True)
class Task:
    """One sample to turn into a strip."""

    name: str
    split: str
    row: int
    video: Path


@dataclass
class Summary:
    """What a run did; ``log`` holds this run's (name, reason) lines."""

    samples: int = 0
    existing: int = 0
    written: int = 0
    failed: int = 0
    log: list[tuple[str, str]] = field(default_factory=list)


_worker: dict = {}


def _init_worker(settings: Settings, threads: int | None) -> None:
    """Per-process state: the settings, the detector (loaded once) and the colour arrays (memory-mapped)."""
    if threads is not None:
        torch.set_num_threads(threads)
    _worker.clear()
    _worker["settings"] = settings
    _worker["colour"] = {}
    if settings.detector_weights is not None:
        _worker["detector"] = DetectorBoxes(load_person_detector(settings.detector_weights, settings.detector_size))


def _colour(split: str) -> np.ndarray:
    if split not in _worker["colour"]:
        path = split_paths(_worker["settings"].prepared, split)["color"]
        _worker["colour"][split] = np.load(path, mmap_mode="r")
    return _worker["colour"][split]


def _strip_one(task: Task) -> tuple[str, bool, str]:
    """Write the strip of one sample; returns (name, written, log reason or '')."""
    settings: Settings = _worker["settings"]
    detector = _worker.get("detector")
    source_for = (
        (lambda _: detector)
        if detector is not None
        else partial(SkeletonBoxes, np.asarray(_colour(task.split)[task.row]))
    )
    try:
        strip = make_strip(task.video, source_for, settings.panels, settings.size, settings.margin)
    except InputError as error:
        return task.name, False, str(error)
    save_jpeg(settings.out / f"{task.name}.jpg", strip.image)
    notes = []
    if strip.whole_frames:
        notes.append(f"{strip.whole_frames} of {settings.panels} panels without a person box: whole frame used")
    if strip.header_frames is not None:
        notes.append(f"header says {strip.header_frames} frames, {strip.frame_count} decode: panels spread over those")
    return task.name, True, "; ".join(notes)


def find_videos(folders: Sequence[str | os.PathLike]) -> dict[str, Path]:
    """``{sample name: video path}`` for every ``NAME_rgb.avi`` in ``folders`` (not recursive; the first folder wins)."""
    videos: dict[str, Path] = {}
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise InputError(f"{folder}: not a directory of {VIDEO_SUFFIX} videos")
        for entry in os.scandir(folder):
            if entry.name.endswith(VIDEO_SUFFIX):
                videos.setdefault(entry.name[: -len(VIDEO_SUFFIX)], Path(entry.path))
    return videos


def read_names(prepared: Path, split: str, need_colour: bool) -> list[str]:
    """Sample names of one prepared split, checking its colour array when the crops need it."""
    paths = split_paths(prepared, split)
    try:
        names = paths["names"].read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{paths['names']}: cannot read the sample names ({error})") from None
    if need_colour:
        try:
            colour = np.load(paths["color"], mmap_mode="r")
        except (OSError, ValueError) as error:
            raise InputError(
                f"{paths['color']}: cannot read the colour joints ({error}); "
                "prepare NTU with tools.prepare_ntu or pass --detector-weights"
            ) from None
        if colour.ndim != 5 or colour.shape[-1] != 2 or len(colour) != len(names):
            raise InputError(f"{paths['color']}: expected ({len(names)}, T, M, V, 2), got {colour.shape}")
    return names


def _check_settings(panels: int, size: int, margin: float, workers: int, detector_size: int) -> None:
    checks = (("--panels", panels), ("--size", size), ("--workers", workers), ("--detector-size", detector_size))
    for flag, value in checks:
        if value < 1:
            raise InputError(f"{flag} must be at least 1, got {value}")
    if not 0 <= margin <= 1:
        raise InputError(f"--margin must be between 0 and 1, got {margin}")


def make_strips(
    videos: Sequence[str | os.PathLike],
    prepared: str | os.PathLike,
    splits: Sequence[str],
    out: str | os.PathLike,
    panels: int = 5,
    size: int = 224,
    margin: float = 0.1,
    workers: int | None = None,
    detector_weights: str | os.PathLike | None = None,
    detector_size: int = 800,
) -> Summary:
    """Write the missing strips of every sample of ``splits``; see the module docstring."""
    workers = workers or os.cpu_count() or 1
    _check_settings(panels, size, margin, workers, detector_size)
    if detector_weights is not None and not Path(detector_weights).is_file():
        raise InputError(f"{detector_weights}: detector weights file not found")
    prepared, out = Path(prepared), Path(out)
    found = find_videos(videos)
    summary, tasks, seen = Summary(), [], set()
    for split in splits:
        for row, name in enumerate(read_names(prepared, split, detector_weights is None)):
            if name in seen:
                continue
            seen.add(name)
            summary.samples += 1
            if (out / f"{name}.jpg").exists():
                summary.existing += 1
            elif name not in found:
                summary.failed += 1
                summary.log.append((name, f"no {name}{VIDEO_SUFFIX} in {', '.join(map(str, videos))}"))
            else:
                tasks.append(Task(name, split, row, found[name]))
    out.mkdir(parents=True, exist_ok=True)
    weights = None if detector_weights is None else Path(detector_weights)
    settings = Settings(prepared, out, panels, size, margin, weights, detector_size)
    with open(out / LOG_NAME, "a", encoding="utf-8") as log, tqdm(total=len(tasks), desc="strips", unit="video") as bar:
        log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}: {len(tasks)} videos to do\n")
        log.writelines(f"{name}\t{reason}\n" for name, reason in summary.log)
        for name, written, reason in _run(tasks, settings, workers):
            summary.written += written
            summary.failed += not written
            if reason:
                summary.log.append((name, reason))
                log.write(f"{name}\t{reason}\n")
                log.flush()
            bar.update()
    return summary


def _run(tasks: list[Task], settings: Settings, workers: int) -> Iterator[tuple[str, bool, str]]:
    """Results of ``_strip_one`` over ``tasks``: in this process for one worker, else in a spawn pool."""
    if workers == 1 or len(tasks) <= 1:
        _init_worker(settings, None)
        yield from map(_strip_one, tasks)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(settings, 1)) as pool:
        yield from pool.imap_unordered(_strip_one, tasks)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", nargs="+", required=True, help="folders of SsssCcccPpppRrrrAaaa_rgb.avi files")
    parser.add_argument("--prepared", required=True, help="prepared NTU protocol folder (names and colour joints)")
    parser.add_argument("--split", action="append", required=True, help="split to do; repeat for several")
    parser.add_argument("--out", required=True, help="folder of the strips (<name>.jpg)")
    parser.add_argument("--panels", type=int, default=5, help="crops per strip (default 5)")
    parser.add_argument("--size", type=int, default=224, help="side of each square crop in pixels (default 224)")
    parser.add_argument("--margin", type=float, default=0.1, help="box growth per side, fraction of its size")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument(
        "--detector-weights",
        default=None,
        help="local fasterrcnn_resnet50_fpn state dict: detect persons instead of using joints",
    )
    parser.add_argument(
        "--detector-size",
        type=int,
        default=800,
        help="short side the detector resizes frames to (default 800; smaller is faster)",
    )
    return parser.parse_args(argv)


@command
def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = parse_args(argv)
    summary = make_strips(
        args.videos,
        args.prepared,
        args.split,
        args.out,
        args.panels,
        args.size,
        args.margin,
        args.workers,
        args.detector_weights,
        args.detector_size,
    )
    print(
        f"{summary.samples} samples: {summary.existing} strips already there, {summary.written} written, "
        f"{summary.failed} failed (see {Path(args.out) / LOG_NAME})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
