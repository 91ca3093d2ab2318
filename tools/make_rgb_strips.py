"""Command: NTU, NW-UCLA or UTD-MHAD colour videos -> one temporal RGB strip per sample (``<out>/<name>.jpg``).

    python -m tools.make_rgb_strips --videos DIR [DIR ...] --prepared DIR --split train [--split test]
                                    --out DIR [--panels 5] [--size 224] [--margin 0.1] [--workers N]
                                    [--detector-weights FILE] [--detector-size 800] [--focal 531.15]

The strips are the FAM / FRM input (docs/method.md §3). The samples are the rows of ``<prepared>/<split>_names.txt``;
``meta.json`` says the dataset. NTU: sample ``NAME`` is ``NAME_rgb.avi`` in one of the video folders;
UTD-MHAD (a set written by tools/prepare_utd_mhad.py): ``NAME_color.avi``; both are cropped with the
colour-space joints of ``<prepared>/<split>_color.npy``. NW-UCLA: sample ``aAA_sSS_eEE_vVV`` is the
release's frame folder ``view_<V>/aAA_sSS_eEE/`` or a video of that name under the folders, cropped with
its 3D joints (``<split>_data.npy``) projected into the image. ``--detector-weights`` crops with a local
Faster R-CNN instead. Samples whose strip exists are skipped (a re-run resumes); failures, whole-frame
fallbacks and videos shorter than their header are appended to ``<out>/strips_log.txt`` (name, tab,
reason); the run goes on.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine.errors import InputError, command
from feeders.prepared import split_paths
from feeders.skeleton_store import open_split
from tools.kinect_v1 import KINECT_V1_COLOUR_FOCAL
from tools.rgb_sources import NTU_VIDEO_SUFFIX, UTD_VIDEO_SUFFIX, find_suffixed_videos, find_ucla_sources
from tools.rgb_strips import (
    BoxSource,
    DetectorBoxes,
    ProjectedBoxes,
    SkeletonBoxes,
    load_person_detector,
    make_strip,
    save_jpeg,
)

LOG_NAME = "strips_log.txt"
UCLA_GRAPH = "ucla"
#: Datasets whose videos are ``NAME<suffix>`` files in flat folders, cropped with ``<split>_color.npy``.
VIDEO_SUFFIXES = {"ntu": NTU_VIDEO_SUFFIX, "utd": UTD_VIDEO_SUFFIX}


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs besides the task."""

    prepared: Path
    out: Path
    dataset: str  # "ntu", "utd" or "ucla"
    panels: int
    size: int
    margin: float
    detector_weights: Path | None
    detector_size: int
    focal: float


@dataclass(frozen=True)
class Task:
    """One sample to turn into a strip."""

    name: str
    split: str
    row: int
    video: Path  # a video file, or a folder of *_rgb.jpg frames


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
    """Per-process state: the settings, the detector (loaded once) and the joint arrays (memory-mapped)."""
    if threads is not None:
        torch.set_num_threads(threads)
    _worker.clear()
    _worker["settings"] = settings
    _worker["arrays"] = {}
    if settings.detector_weights is not None:
        _worker["detector"] = DetectorBoxes(load_person_detector(settings.detector_weights, settings.detector_size))


def _joints(split: str, kind: str) -> np.ndarray:
    """The memory-mapped ``data`` or ``color`` array of a prepared split, opened once per process."""
    key = (split, kind)
    if key not in _worker["arrays"]:
        _worker["arrays"][key] = np.load(split_paths(_worker["settings"].prepared, split)[kind], mmap_mode="r")
    return _worker["arrays"][key]


def _box_source(task: Task) -> Callable[[int], BoxSource]:
    """``source_for(frame_count)`` of a task: the detector, the NTU colour joints or the NW-UCLA 3D joints."""
    settings: Settings = _worker["settings"]
    if "detector" in _worker:
        return lambda _: _worker["detector"]
    if settings.dataset == "ucla":
        joints = np.asarray(_joints(task.split, "data")[task.row]).transpose(1, 3, 2, 0)  # (T, M, V, 3)
        return partial(ProjectedBoxes, joints, focal=settings.focal)
    return partial(SkeletonBoxes, np.asarray(_joints(task.split, "color")[task.row]))


def _strip_one(task: Task) -> tuple[str, bool, str]:
    """Write the strip of one sample; returns (name, written, log reason or '')."""
    settings: Settings = _worker["settings"]
    try:
        strip = make_strip(task.video, _box_source(task), settings.panels, settings.size, settings.margin)
    except InputError as error:
        return task.name, False, str(error)
    save_jpeg(settings.out / f"{task.name}.jpg", strip.image)
    notes = []
    if strip.whole_frames:
        notes.append(f"{strip.whole_frames} of {settings.panels} panels without a person box: whole frame used")
    if strip.header_frames is not None:
        notes.append(f"header says {strip.header_frames} frames, {strip.frame_count} decode: panels spread over those")
    return task.name, True, "; ".join(notes)


def read_split(prepared: Path, split: str, detector: bool) -> tuple[list[str], str]:
    """Sample names of one prepared split and its dataset: ``"ucla"`` (the NW-UCLA graph), ``"utd"`` (a
    UTD-MHAD set) or ``"ntu"``. An NTU or UTD-MHAD split cropped with its joints must have a colour array,
    one row per name.
    """
    opened = open_split(prepared, split)
    if opened.graph == UCLA_GRAPH:
        dataset = "ucla"
    else:
        dataset = "utd" if (opened.dataset or "").startswith("utd_mhad") else "ntu"
    if dataset != "ucla" and not detector:
        path = split_paths(prepared, split)["color"]
        try:
            colour = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise InputError(
                f"{path}: cannot read the colour joints ({error}); "
                "prepare the data with tools.prepare_ntu / tools.prepare_utd_mhad, or pass --detector-weights"
            ) from None
        if colour.ndim != 5 or colour.shape[-1] != 2 or len(colour) != len(opened.names):
            raise InputError(f"{path}: expected ({len(opened.names)}, T, M, V, 2), got {colour.shape}")
    return opened.names, dataset


def _check_settings(panels: int, size: int, margin: float, workers: int, detector_size: int, focal: float) -> None:
    checks = (("--panels", panels), ("--size", size), ("--workers", workers), ("--detector-size", detector_size))
    for flag, value in checks:
        if value < 1:
            raise InputError(f"{flag} must be at least 1, got {value}")
    if not 0 <= margin <= 1:
        raise InputError(f"--margin must be between 0 and 1, got {margin}")
    if not focal > 0:
        raise InputError(f"--focal must be positive, got {focal}")


def _missing_reason(name: str, dataset: str, videos: Sequence[str | os.PathLike]) -> str:
    folders = ", ".join(map(str, videos))
    if dataset == "ucla":
        return f"no view_<V>/{name.rsplit('_v', 1)[0]} frame folder or {name}.<video> under {folders}"
    return f"no {name}{VIDEO_SUFFIXES[dataset]} in {folders}"


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
    focal: float = KINECT_V1_COLOUR_FOCAL,
) -> Summary:
    """Write the missing strips of every sample of ``splits``; see the module docstring."""
    workers = workers or os.cpu_count() or 1
    _check_settings(panels, size, margin, workers, detector_size, focal)
    if detector_weights is not None and not Path(detector_weights).is_file():
        raise InputError(f"{detector_weights}: detector weights file not found")
    prepared, out = Path(prepared), Path(out)
    split_names = {split: read_split(prepared, split, detector_weights is not None) for split in splits}
    dataset = next(iter(split_names.values()))[1]
    found = find_ucla_sources(videos) if dataset == "ucla" else find_suffixed_videos(videos, VIDEO_SUFFIXES[dataset])
    summary, tasks, seen = Summary(), [], set()
    for split, (names, _) in split_names.items():
        for row, name in enumerate(names):
            if name in seen:
                continue
            seen.add(name)
            summary.samples += 1
            if (out / f"{name}.jpg").exists():
                summary.existing += 1
            elif name not in found:
                summary.failed += 1
                summary.log.append((name, _missing_reason(name, dataset, videos)))
            else:
                tasks.append(Task(name, split, row, found[name]))
    out.mkdir(parents=True, exist_ok=True)
    weights = None if detector_weights is None else Path(detector_weights)
    settings = Settings(prepared, out, dataset, panels, size, margin, weights, detector_size, focal)
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
    parser.add_argument(
        "--videos",
        nargs="+",
        required=True,
        help="NTU: folders of SsssCcccPpppRrrrAaaa_rgb.avi files; NW-UCLA: folders searched for "
        "view_<V>/aAA_sSS_eEE frame folders or aAA_sSS_eEE_vVV videos",
    )
    parser.add_argument("--prepared", required=True, help="prepared NTU protocol or NW-UCLA folder (names, joints)")
    parser.add_argument("--split", action="append", required=True, help="split to do; repeat for several")
    parser.add_argument("--out", required=True, help="folder of the strips (<name>.jpg)")
    parser.add_argument("--panels", type=int, default=5, help="crops per strip (default 5)")
    parser.add_argument("--size", type=int, default=224, help="side of each square crop in pixels (default 224)")
    parser.add_argument("--margin", type=float, default=0.1,
                        help="box growth per side, a fraction of its size (default 0.1)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument(
        "--detector-weights",
        default=None,
        help="local fasterrcnn_resnet50_fpn state dict: detect persons instead of using joints (default: none: boxes "
        "around the colour-space or projected joints)",
    )
    parser.add_argument(
        "--detector-size",
        type=int,
        default=800,
        help="short side the detector resizes frames to (default 800; smaller is faster)",
    )
    parser.add_argument(
        "--focal",
        type=float,
        default=KINECT_V1_COLOUR_FOCAL,
        help="NW-UCLA: focal length in pixels of a 640x480 frame for projecting the 3D joints "
        f"(default {KINECT_V1_COLOUR_FOCAL}, the Kinect v1 colour camera's)",
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
        args.focal,
    )
    print(
        f"{summary.samples} samples: {summary.existing} strips already there, {summary.written} written, "
        f"{summary.failed} failed (see {Path(args.out) / LOG_NAME})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
