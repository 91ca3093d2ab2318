"""The work_dir of a run: refuse to clobber an earlier run, find the checkpoint to resume from."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import InputError

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
#: Files a training run writes; an earlier run is recognised, and replaced with --overwrite, by these.
RUN_PATTERNS = ("log.txt", "config.yaml", "results.json", "*.pt", "epoch*_*", "tensorboard/events.out.tfevents.*")


def earlier_run_files(work_dir: Path) -> list[Path]:
    """Files of an earlier training run found in ``work_dir``."""
    return sorted({path for pattern in RUN_PATTERNS for path in work_dir.glob(pattern) if path.is_file()})


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


def prepare_train_dir(config: dict[str, Any]) -> tuple[Path, Path | None]:
    """Create the work_dir; return it and the checkpoint to resume from.

    An earlier run is reused only with ``--resume`` and replaced only with ``--overwrite``; otherwise the
    run stops with an error before anything is written.
    """
    work_dir = Path(config["work_dir"])
    resume_from = resume_checkpoint(config, work_dir)
    earlier = earlier_run_files(work_dir) if work_dir.is_dir() else []
    if resume_from is None and earlier:
        if not config["overwrite"]:
            raise InputError(f"work_dir {work_dir} holds an earlier run ({earlier[0].name}, ...): "
                             "pass --resume to continue it or --overwrite to replace it")
        for path in earlier:
            path.unlink()
    work_dir.mkdir(parents=True, exist_ok=True)
    return work_dir, resume_from
