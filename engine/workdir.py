"""The work_dir of a run: refuse to clobber an earlier run, find the checkpoint to resume from, and check that
the run's files will fit before the first one is written."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from engine.errors import InputError

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
#: Files a training run writes; an earlier run is recognised, and replaced with --overwrite, by these.
RUN_PATTERNS = ("log.txt", "config.yaml", "results.json", "*.pt", "epoch*_*", "tensorboard/events.out.tfevents.*")
#: What makes those files an earlier run worth keeping: a checkpoint or a result. A start that failed before
#: its first checkpoint leaves only a log and a config, and does not block its own fix.
KEPT_PATTERNS = ("results.json", "*.pt", "epoch*_*")
#: Temporary files that a run killed in the middle of an atomic write leaves behind (engine/fileio.py).
STALE_TEMPORARY = ".*.tmp*"
#: Checkpoints on disk at once at worst: last, best, and the temporary copy of one being written.
CHECKPOINT_COPIES = 3


def earlier_run_files(work_dir: Path) -> list[Path]:
    """Files of an earlier training run found in ``work_dir``; empty if none of them is a checkpoint or result."""
    def matches(patterns: tuple[str, ...]) -> set[Path]:
        return {path for pattern in patterns for path in work_dir.glob(pattern) if path.is_file()}

    return sorted(matches(RUN_PATTERNS)) if matches(KEPT_PATTERNS) else []


def resume_checkpoint(config: dict[str, Any], work_dir: Path) -> Path | None:
    """The checkpoint to resume from: ``resume: auto`` takes the work_dir's last one if there is one."""
    resume = config["resume"]
    if resume in (None, False, "", "false", "False"):
        return None
    if resume in (True, "auto"):
        last = work_dir / LAST_CHECKPOINT
        return last if last.is_file() else None
    path = Path(resume)
    if not path.is_file():
        raise InputError(f"--resume: checkpoint not found: {path}")
    return path


def check_train_dir(config: dict[str, Any]) -> Path | None:
    """The checkpoint to resume from; an error if the work_dir holds an earlier run that is neither resumed
    (``--resume``) nor to be replaced (``--overwrite``). Writes nothing."""
    work_dir = Path(config["work_dir"])
    resume_from = resume_checkpoint(config, work_dir)
    earlier = earlier_run_files(work_dir) if work_dir.is_dir() else []
    if resume_from is None and earlier and not config["overwrite"]:
        raise InputError(f"work_dir {work_dir} holds an earlier run ({earlier[0].name}, ...): "
                         "pass --resume to continue it or --overwrite to replace it")
    return resume_from


def create_train_dir(config: dict[str, Any], resume_from: Path | None, checkpoint_bytes: int) -> Path:
    """Create the work_dir (replacing an earlier run when not resuming), after checking that it is writable
    and has room for the checkpoints (``checkpoint_bytes`` each); return it."""
    work_dir = Path(config["work_dir"])
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=work_dir):
            pass
    except OSError as error:
        raise InputError(f"work_dir {work_dir}: not writable ({error.strerror})") from None
    free, needed = shutil.disk_usage(work_dir).free, CHECKPOINT_COPIES * checkpoint_bytes
    if free < needed:
        raise InputError(f"work_dir {work_dir}: {free / 2**20:.1f} MiB free, the checkpoints need about "
                         f"{needed / 2**20:.1f} MiB: free some space or choose another --work-dir")
    stale = list(work_dir.glob(STALE_TEMPORARY))
    for path in (earlier_run_files(work_dir) if resume_from is None else []) + stale:
        path.unlink()
    return work_dir
