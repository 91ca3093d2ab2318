"""Run logging: timestamped lines to stdout and ``log.txt``, scalars to TensorBoard (main process only)."""
from __future__ import annotations

import time
from pathlib import Path


class RunLog:
    """Log lines and scalars of one run; silent on ranks other than 0."""

    def __init__(self, work_dir: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.path = work_dir / "log.txt"
        self.write_failed = False
        self.writer = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # deferred: importing TensorBoard is slow

            self.writer = SummaryWriter(str(work_dir / "tensorboard"))

    def info(self, message: str) -> None:
        """Print ``message`` with a timestamp and append it to ``log.txt``."""
        if not self.enabled:
            return
        line = f"[ {time.strftime('%Y-%m-%d %H:%M:%S')} ] {message}"
        print(line, flush=True)
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as error:  # a full disk stops the run at its next checkpoint, not at a log line
            if not self.write_failed:
                print(f"warning: cannot append to {self.path} ({error.strerror}); logging to stdout only", flush=True)
            self.write_failed = True

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Write each ``tag: value`` to TensorBoard at ``step``."""
        if self.writer is None:
            return
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
