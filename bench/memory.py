"""Resident memory of this process from Linux ``/proc``, for benches that compare what two ways of working hold."""
from __future__ import annotations

from pathlib import Path


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def high_water_rss() -> int:
    """This process's peak RSS in bytes (Linux ``VmHWM``; unlike ``ru_maxrss`` it is not inherited at fork)."""
    return _status("VmHWM")


def current_rss() -> int:
    """This process's RSS in bytes (``VmRSS``)."""
    return _status("VmRSS")


def reset_high_water() -> None:
    """Set the peak RSS to the current RSS (Linux ``clear_refs`` 5), so that a later peak is this block's."""
    Path("/proc/self/clear_refs").write_text("5")
