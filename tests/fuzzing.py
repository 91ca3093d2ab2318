"""A small fuzzer for readers of outside files: truncations and byte flips of a valid file, each of which must
either be read or be refused with one ``InputError`` line naming the file, within a time limit."""
from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from engine.errors import InputError

#: Seconds one read of one corrupted file may take before it counts as a hang.
READ_LIMIT = 5.0


def corruptions(valid: bytes, seed: int, truncations: int = 24, flips: int = 24) -> Iterator[tuple[str, bytes]]:
    """(label, content): ``valid`` cut at offsets spread over the file (most in its first kilobyte, where the
    headers are), then with 1 to 8 random bytes replaced."""
    rng = np.random.default_rng(seed)
    size = len(valid)
    head = rng.integers(0, min(size, 1024), truncations // 2)
    body = np.linspace(0, size - 1, truncations - len(head)).astype(int)
    for offset in sorted({0, *head.tolist(), *body.tolist()}):
        yield f"cut at {offset} of {size}", valid[:offset]
    for _ in range(flips):
        data = bytearray(valid)
        positions = rng.integers(0, size, rng.integers(1, 9))
        for position in positions:
            data[position] = int(rng.integers(0, 256))
        yield f"bytes {sorted(positions.tolist())} replaced", bytes(data)


@contextlib.contextmanager
def time_limit(seconds: float, label: str) -> Iterator[None]:
    """Fail with ``label`` if the block runs longer than ``seconds`` (SIGALRM, main thread only)."""
    def expire(signum, frame):
        raise TimeoutError(f"{label}: no answer within {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def fuzz_reader(path: Path, valid: bytes, read: Callable[[Path], object], seed: int = 0, **counts: int) -> int:
    """Write each corruption of ``valid`` to ``path`` and ``read(path)`` it: it must succeed or raise one
    ``InputError`` line naming ``path``; any other exception or a hang fails with the case. Returns how
    many corruptions were refused."""
    refused = 0
    for label, content in corruptions(valid, seed, **counts):
        path.write_bytes(content)
        try:
            with time_limit(READ_LIMIT, label):
                read(path)
        except InputError as error:
            message = str(error)
            assert "\n" not in message and path.name in message, f"{label}: {message!r}"
            refused += 1
        except Exception as error:
            raise AssertionError(f"{path.name}, {label}: {type(error).__name__}: {error}") from error
    return refused
