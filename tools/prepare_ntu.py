"""Command: NTU RGB+D raw ``.skeleton`` files -> our prepared format (and, with --npz, CTR-GCN npz files).

    python -m tools.prepare_ntu --skeletons DIR [DIR ...] --missing FILE --dataset ntu60|ntu120 --out OUT
                                [--protocols xsub xview] [--npz] [--workers N] [--strict]

Stage 1 parses, denoises and centres every file in a process pool. Files are grouped by setup, camera
and performer; each group's result is saved atomically to ``OUT/.cache`` as soon as it is done, under a
name that fingerprints its files (names, sizes, mtimes), so a killed run resumes where it stopped.
Stage 2 streams the cached samples, one at a time, into ``OUT/<protocol>/{train,test}_{data,color,label,
names}`` and ``meta.json`` (plus ``OUT/NTU60_CS.npz`` etc. with --npz). Bad files (unreadable, corrupt,
misnamed, or with non-finite coordinates) are skipped, each printed with its reason and listed in
``OUT/prepare_log.txt`` (tools/sample_checks.py); with --strict any of them stops the run instead.
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.errors import InputError, command
from engine.fileio import atomic_path, write_text_atomic
from feeders.prepared import split_paths, write_meta, write_npy_atomic
from tools.ntu_denoise import ACTOR_WIDTH, denoise
from tools.ntu_layout import (
    DATASETS,
    MIN_FRAMES,
    NAME_FIELDS,
    NAME_PATTERN,
    Dataset,
    NpyWriter,
    centre,
    parse_name,
    person_slots,
    split_rows,
    write_ctrgcn_npz,
)
from tools.ntu_raw import NUM_JOINTS, RawSkeleton, parse_skeleton
from tools.sample_checks import STRICT_HELP, check_finite, check_skips, read_or_skip, skip_note, write_skip_log

#: Bumped when what a cached group holds changes (v2: samples with non-finite coordinates are skipped).
CACHE_VERSION = "ntu-v2"
SUFFIX = ".skeleton"


@dataclass(frozen=True)
class Chunk:
    """Files of one setup / camera / performer group and the cache file holding their results."""

    key: str
    names: tuple[str, ...]
    paths: tuple[str, ...]
    cache: Path


@dataclass
class Summary:
    """What a run did: file counts, skipped samples with reasons, padded length and split sizes."""

    found: int = 0
    excluded: int = 0
    ignored: int = 0
    parsed: int = 0
    resumed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    splits: dict[str, dict[str, int]] = field(default_factory=dict)


def prepare_sample(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Parse, check, denoise and centre one file: joints (T, 75 A) and colours (T, A, 25, 2), A = 1 or 2 actors."""
    raw = parse_skeleton(path)
    check_raw_finite(raw, str(path))
    actors = denoise(raw)
    return centre(actors.joints, raw.name), actors.colors[:, : actors.num_actors]


def check_raw_finite(raw: RawSkeleton, source: str) -> None:
    """An ``InputError`` if a body's joints or colour pixels hold a NaN or infinite value (frames counted
    among the frames with a body)."""
    coords = np.concatenate([np.concatenate((body.joints, body.colors), axis=2) for body in raw.bodies])
    check_finite(source, coords, frames=np.concatenate([body.frames for body in raw.bodies]))


# ------------------------------------------------------------------------------------ inputs and plan
def read_missing(path: str | os.PathLike) -> set[str]:
    """Sample names listed in an NTU missing-skeleton file (header lines and blanks are ignored)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise InputError(f"{path}: cannot read the missing-skeleton list ({error.strerror})") from None
    return {match.group(0) for match in NAME_PATTERN.finditer(text)}


def find_skeletons(dirs: Sequence[str | os.PathLike]) -> dict[str, Path]:
    """Map sample name -> path of every ``*.skeleton`` file in ``dirs`` (a name found twice is an error)."""
    found: dict[str, Path] = {}
    for folder in map(Path, dirs):
        if not folder.is_dir():
            raise InputError(f"{folder}: not a directory of .skeleton files")
        for entry in os.scandir(folder):
            if entry.name.endswith(SUFFIX):
                name = entry.name[: -len(SUFFIX)]
                if name in found:
                    raise InputError(f"sample {name} found twice: {found[name]} and {entry.path}")
                found[name] = Path(entry.path)
    return found


def select_files(files: dict[str, Path], missing: set[str], spec: Dataset, summary: Summary) -> dict[str, Path]:
    """Drop misnamed files (reported), listed missing skeletons and setups or actions outside the dataset."""
    summary.found = len(files)
    selected = {}
    for name, path in files.items():
        ids = parse_name(name)
        if ids is None:
            summary.failed[name] = f"{path}: file name does not follow SsssCcccPpppRrrrAaaa"
        elif name in missing:
            summary.excluded += 1
        elif ids["setup"] > spec.max_setup or not 1 <= ids["action"] <= spec.num_class:
            summary.ignored += 1
        else:
            selected[name] = path
    return selected


def plan_chunks(files: dict[str, Path], cache_dir: Path, summary: Summary) -> list[Chunk]:
    """Group the files by setup / camera / performer in name order; unreadable files go to ``summary``."""
    groups: dict[str, list[tuple[str, Path]]] = {}
    digests = {}
    for name in sorted(files):
        stat = read_or_skip(Path.stat, name, files[name], summary.failed)
        if stat is None:
            continue
        groups.setdefault(name[:12], []).append((name, files[name]))
        digest = digests.setdefault(name[:12], hashlib.sha1(CACHE_VERSION.encode()))
        digest.update(f"{name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return [
        Chunk(key, tuple(name for name, _ in members), tuple(str(path) for _, path in members),
              cache_dir / f"{key}-{digests[key].hexdigest()[:16]}.npz")
        for key, members in groups.items()
    ]  # fmt: skip


def clean_cache(cache_dir: Path, chunks: list[Chunk]) -> None:
    """Remove temporary files of killed runs and the caches of groups whose files changed."""
    keep = {chunk.cache.name for chunk in chunks}
    keys = {chunk.key for chunk in chunks}
    for entry in cache_dir.iterdir():
        if entry.name.startswith(".") or (entry.name.split("-")[0] in keys and entry.name not in keep):
            entry.unlink()


# ------------------------------------------------------------------------------------- stage 1: pool
def process_chunk(chunk: Chunk) -> int:
    """Pool task: prepare every file of ``chunk``, save the results atomically; returns the file count."""
    samples: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    failed: dict[str, str] = {}
    for name, path in zip(chunk.names, chunk.paths):
        sample = read_or_skip(prepare_sample, name, path, failed)
        if sample is not None:
            samples[name] = sample
    empty = [np.zeros(0, dtype=np.float32)]
    with atomic_path(chunk.cache, suffix=".npz") as tmp:
        np.savez(
            tmp,
            names=np.array(list(samples), dtype="U20"),
            frames=np.array([len(joints) for joints, _ in samples.values()], dtype=np.int64),
            actors=np.array([colors.shape[1] for _, colors in samples.values()], dtype=np.int64),
            joints=np.concatenate([joints.ravel() for joints, _ in samples.values()] + empty),
            colors=np.concatenate([colors.ravel() for _, colors in samples.values()] + empty),
            failed_names=np.array(list(failed), dtype="U20"),
            failed_reasons=np.array(list(failed.values()), dtype=str),
        )
    return len(chunk.names)


def run_stage1(chunks: list[Chunk], workers: int) -> int:
    """Prepare the chunks that have no cache yet, in a pool of ``workers``; returns the files parsed."""
    todo = [chunk for chunk in chunks if not chunk.cache.exists()]
    total = sum(len(chunk.names) for chunk in todo)
    with tqdm(total=total, desc="parse", unit="file") as bar:
        if workers <= 1 or len(todo) <= 1:
            for chunk in todo:
                bar.update(process_chunk(chunk))
        else:
            with multiprocessing.get_context("spawn").Pool(min(workers, len(todo))) as pool:
                for count in pool.imap_unordered(process_chunk, todo):
                    bar.update(count)
    return total


# ------------------------------------------------------------------------------------ stage 2: write
@dataclass(frozen=True)
class Manifest:
    """Every prepared sample in name order: name, chunk cache, index in that chunk, frame count."""

    names: list[str]
    caches: list[Path]
    positions: list[int]
    frames: np.ndarray

    def ids(self) -> dict[str, np.ndarray]:
        """Per-field id arrays (setup, camera, performer, replication, action), one entry per sample."""
        parsed = [parse_name(name) for name in self.names]
        return {key: np.array([ids[key] for ids in parsed], dtype=np.int64) for key in NAME_FIELDS}


def read_manifest(chunks: list[Chunk], summary: Summary) -> Manifest:
    """Collect the prepared samples of the chunk caches, and their failures into ``summary``."""
    names: list[str] = []
    caches: list[Path] = []
    positions: list[int] = []
    frames = [np.zeros(0, dtype=np.int64)]
    for chunk in chunks:
        with np.load(chunk.cache) as cached:
            chunk_names = cached["names"].tolist()
            frames.append(cached["frames"])
            summary.failed.update(zip(cached["failed_names"].tolist(), cached["failed_reasons"].tolist()))
        names += chunk_names
        caches += [chunk.cache] * len(chunk_names)
        positions += range(len(chunk_names))
    return Manifest(names, caches, positions, np.concatenate(frames))


class ChunkReader:
    """Reads samples back from chunk caches, keeping the last chunk loaded (split rows come in runs)."""

    def __init__(self) -> None:
        self._path: Path | None = None

    def sample(self, path: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Joints (T, 75 A) and colours (T, A, 25, 2) of the ``index``-th sample of the chunk at ``path``."""
        if path != self._path:
            with np.load(path) as cached:
                self._shapes = np.stack((cached["frames"], cached["actors"]), axis=1)
                self._joints, self._colors = cached["joints"], cached["colors"]
            sizes = self._shapes.prod(axis=1)
            self._joint_at = np.concatenate(([0], np.cumsum(sizes * ACTOR_WIDTH)))
            self._color_at = np.concatenate(([0], np.cumsum(sizes * NUM_JOINTS * 2)))
            self._path = path
        frames, actors = map(int, self._shapes[index])
        joints = self._joints[self._joint_at[index] : self._joint_at[index + 1]]
        colors = self._colors[self._color_at[index] : self._color_at[index + 1]]
        return joints.reshape(frames, actors * ACTOR_WIDTH), colors.reshape(frames, actors, NUM_JOINTS, 2)


def write_split(
    root: Path, split: str, rows: np.ndarray, manifest: Manifest, labels: np.ndarray, length: int, duplicate: bool
) -> None:
    """Write one split: data and colour streamed sample by sample, then the labels, the names last."""
    paths = split_paths(root, split)
    reader = ChunkReader()
    with (
        atomic_path(paths["data"], suffix=".npy") as data_tmp,
        atomic_path(paths["color"], suffix=".npy") as color_tmp,
        open(data_tmp, "wb") as data_file,
        open(color_tmp, "wb") as color_file,
    ):
        data_out = NpyWriter(data_file, np.float32, (len(rows), 3, length, NUM_JOINTS, 2))
        color_out = NpyWriter(color_file, np.float32, (len(rows), length, 2, NUM_JOINTS, 2))
        for row in tqdm(rows, desc=f"write {root.name}/{split}", unit="sample"):
            joints, colors = reader.sample(manifest.caches[row], manifest.positions[row])
            data, color = person_slots(joints, colors, length, duplicate)
            data_out.write(data[None])
            color_out.write(color[None])
        data_out.finish()
        color_out.finish()
    write_npy_atomic(paths["label"], labels[rows])
    write_text_atomic(paths["names"], "".join(f"{manifest.names[row]}\n" for row in rows))


def write_protocol(out: Path, spec: Dataset, protocol: str, manifest: Manifest, length: int, npz: bool) -> dict:
    """Write ``OUT/<protocol>`` (its ``meta.json`` last) and, if asked, the CTR-GCN npz; returns split sizes."""
    root = out / protocol
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.json").unlink(missing_ok=True)
    ids = manifest.ids()
    labels = ids["action"] - 1
    rule = spec.protocols[protocol]
    splits = dict(zip(("train", "test"), split_rows(ids, rule)))
    for split, rows in splits.items():
        write_split(root, split, rows, manifest, labels, length, spec.duplicate_single)
    sizes = {split: len(rows) for split, rows in splits.items()}
    write_meta(root, f"{spec.name}-{protocol}", spec.num_class, "ntu_rgb_d", sizes)
    if npz:
        sources = {split: (split_paths(root, split)["data"], labels[rows]) for split, rows in splits.items()}
        write_ctrgcn_npz(out / rule.npz_name, sources, spec.num_class)
    return sizes


# --------------------------------------------------------------------------------------------- driver
def prepare(
    skeletons: Sequence[str | os.PathLike],
    missing: str | os.PathLike,
    dataset: str,
    out: str | os.PathLike,
    protocols: Sequence[str] | None = None,
    npz: bool = False,
    workers: int = 1,
    strict: bool = False,
) -> Summary:
    """Run the whole preparation (see the module docstring) and return its summary; nothing usable, or with
    ``strict`` any skipped file, is an ``InputError`` raised before any output (the cache aside) is written."""
    spec = DATASETS[dataset]
    protocols = list(protocols or spec.protocols)
    unknown = [protocol for protocol in protocols if protocol not in spec.protocols]
    if unknown:
        raise InputError(f"protocol {unknown[0]!r} is not defined for {dataset} (use {', '.join(spec.protocols)})")
    summary = Summary()
    files = select_files(find_skeletons(skeletons), read_missing(missing), spec, summary)
    nothing = f"no usable {dataset} sample in {', '.join(map(str, skeletons))}"
    if not files:  # stop before the cache is made (check_skips raises)
        check_skips(summary.failed, strict, empty=nothing)
    out = Path(out)
    cache_dir = out / ".cache" / CACHE_VERSION
    cache_dir.mkdir(parents=True, exist_ok=True)
    chunks = plan_chunks(files, cache_dir, summary)
    clean_cache(cache_dir, chunks)
    summary.parsed = run_stage1(chunks, workers)
    summary.resumed = sum(len(chunk.names) for chunk in chunks) - summary.parsed
    manifest = read_manifest(chunks, summary)
    check_skips(summary.failed, strict, empty=None if manifest.names else nothing)
    write_skip_log(out, summary.failed)
    summary.frames = max(MIN_FRAMES, int(manifest.frames.max()))
    for protocol in protocols:
        summary.splits[protocol] = write_protocol(out, spec, protocol, manifest, summary.frames, npz)
    return summary


def default_workers() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.prepare_ntu", description=__doc__.splitlines()[0])
    parser.add_argument("--skeletons", nargs="+", required=True, metavar="DIR", help="folders of .skeleton files")
    parser.add_argument("--missing", required=True, metavar="FILE", help="NTU list of samples with missing skeletons")
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS),
                        help="NTU RGB+D 60 or 120: its classes, protocols and splits")
    parser.add_argument("--out", required=True, metavar="OUT", help="output folder")
    parser.add_argument("--protocols", nargs="+", metavar="P",
                        help="protocols to write, e.g. xsub (default: all of the dataset's)")
    parser.add_argument("--npz", action="store_true", help="also write the CTR-GCN npz files")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="processes (default: %(default)s, the cores this process may use)")
    parser.add_argument("--strict", action="store_true", help=STRICT_HELP)
    return parser.parse_args(argv)


@command
def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = parse_args(argv)
    summary = prepare(
        args.skeletons, args.missing, args.dataset, args.out, args.protocols, args.npz, args.workers, args.strict
    )
    print(f"{summary.found} files found: {summary.excluded} in the missing list, {summary.ignored} outside "
          f"{args.dataset}; {summary.parsed} parsed, {summary.resumed} taken from the cache")  # fmt: skip
    print(f"{skip_note(args.out, summary.failed)}; padded to {summary.frames} frames")
    for protocol, sizes in summary.splits.items():
        print(f"{protocol}: " + ", ".join(f"{split} {size}" for split, size in sizes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
