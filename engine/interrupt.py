"""Stop requests from outside: SIGTERM (what a cluster scheduler sends before pre-empting a job) and SIGINT
(Ctrl-C) are recorded instead of killing the process, so that the training loop can finish its step, save
a resumable checkpoint and exit cleanly. DataLoader workers ignore both: a scheduler signals every process
of the job, and a worker killed under the main process would turn a clean stop into a crash."""
from __future__ import annotations

import signal
import threading
import time
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: A repeat of the first signal within this many seconds is the same request (sent to the process group and
#: passed on by a launcher too), not a second one.
REPEAT_SECONDS = 1.0


class StopRequests:
    """Context manager that records the first stop signal in ``received`` (None until one arrives) and
    restores the previous handlers on exit; a second signal stops at once (``KeyboardInterrupt``), except a
    repeat of the first within :data:`REPEAT_SECONDS`. Outside the main thread it records nothing."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._received_at = 0.0
        self._previous: dict[signal.Signals, object] = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.received is not None:
            if signum == self.received and now - self._received_at < REPEAT_SECONDS:
                return
            raise KeyboardInterrupt(f"second stop signal ({signal.Signals(signum).name}): stopping at once")
        self.received, self._received_at = signal.Signals(signum), now

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._record) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def ignore_stop_signals() -> None:
    """Make this process (a DataLoader worker) ignore SIGTERM and SIGINT; the main process stops it."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
