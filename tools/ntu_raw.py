"""Parse one NTU RGB+D ``.skeleton`` file into per-body arrays, vectorised.

The file is read once as bytes. Token boundaries come from one pass of NumPy over the bytes; the frame
and body headers are walked with integer token offsets (a Python loop over frames and bodies only); the
numbers of the 25 x 12 joint blocks are converted all at once by a vectorised decimal reader (exact:
the same doubles as Python's ``float``). Frames without a body are dropped, as in the reference
pipeline, so frame indices count the remaining frames.

The fast path also checks that every joint line holds exactly its 12 numbers. A file where it finds any
problem is read again line by line, as the public pipeline reads it (the fields it needs from each line,
so a joint line with 11 or 13 numbers is read as there); what that reader cannot read is an error naming
the right line and the reason.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError

NUM_JOINTS = 25
INFO_FIELDS = 10  # bodyID, clippedEdges, hand states ..., leanX, leanY, trackingState
JOINT_FIELDS = 12  # x y z depthX depthY colorX colorY orientW orientX orientY orientZ trackingState
KEPT_FIELDS = np.array([0, 1, 2, 5, 6])  # x, y, z, colorX, colorY
BODY_TOKENS = INFO_FIELDS + 1 + NUM_JOINTS * JOINT_FIELDS
_KEPT_OFFSETS = (np.arange(NUM_JOINTS)[:, None] * JOINT_FIELDS + KEPT_FIELDS).ravel()

_INT32_DIGITS = 9  # 10**9 < 2**31
_MAX_FAST_DIGITS = 15  # 10**15 < 2**53: the integer mantissa is exact in a double
_MAX_FAST_LENGTH = 24
_POW10 = 10.0 ** np.arange(_MAX_FAST_LENGTH + 1)  # exact for the <= 15 fraction digits of a readable token
_SPACE, _DOT, _MINUS, _PLUS, _ZERO, _NEWLINE, _RETURN = 32, 46, 45, 43, 48, 10, 13


@dataclass(frozen=True)
class Body:
    """One tracked body of a sequence: its joints and colour-pixel coordinates, frame by frame."""

    body_id: str
    joints: np.ndarray  # (T_b, 25, 3) float32, metres
    colors: np.ndarray  # (T_b, 25, 2) float32, colour-camera pixels (x, y)
    frames: np.ndarray  # (T_b,) int64, index of each occurrence among the frames that have a body


@dataclass(frozen=True)
class RawSkeleton:
    """A parsed file: ``num_frames`` frames with at least one body, bodies in order of first appearance."""

    name: str
    num_frames: int
    bodies: tuple[Body, ...]


def parse_skeleton(path: str | os.PathLike) -> RawSkeleton:
    """Read and parse one ``.skeleton`` file; bad content raises ``InputError`` naming the file and line."""
    path = Path(path)
    return parse_skeleton_bytes(path.read_bytes(), name=path.stem, source=str(path))


def parse_skeleton_bytes(raw: bytes, name: str, source: str | None = None) -> RawSkeleton:
    """Parse the bytes of a ``.skeleton`` file; ``source`` names it in error messages."""
    source = source or name
    try:
        return _parse_fast(raw, name, source)
    except InputError:
        return _parse_lines(raw, name, source)


def _parse_fast(raw: bytes, name: str, source: str) -> RawSkeleton:
    """The vectorised reader; any irregularity (not only an unreadable file) raises ``InputError``."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    starts, ends = _token_bounds(buf)
    walker = _HeaderWalker(raw, starts, ends, source)
    blocks, frame_of, ids, num_frames = walker.walk()
    if not blocks:
        raise InputError(f"{source}: no frame with a body")
    _check_joint_lines(buf, starts, ends, np.asarray(blocks), source)
    tokens = (np.asarray(blocks)[:, None] + _KEPT_OFFSETS).ravel()
    values = _read_decimals(raw, buf, starts[tokens], ends[tokens], source)
    return _raw_skeleton(name, num_frames, values, frame_of, ids)


def _raw_skeleton(name: str, num_frames: int, values: np.ndarray, frame_of: list[int], ids: list[bytes]
                  ) -> RawSkeleton:
    """Group the kept numbers (one row of 25 x 5 per body occurrence) into bodies by id."""
    with np.errstate(over="ignore"):  # beyond float32: infinite, refused by prepare_ntu's finiteness check
        values = values.astype(np.float32).reshape(len(ids), NUM_JOINTS, len(KEPT_FIELDS))
    frame_of = np.asarray(frame_of, dtype=np.int64)
    occurrences: dict[bytes, list[int]] = {}
    for k, body_id in enumerate(ids):
        occurrences.setdefault(body_id, []).append(k)
    bodies = tuple(
        Body(
            body_id=body_id.decode("latin-1"),
            joints=np.ascontiguousarray(values[rows, :, :3]),
            colors=np.ascontiguousarray(values[rows, :, 3:]),
            frames=frame_of[rows],
        )
        for body_id, rows in occurrences.items()
    )
    return RawSkeleton(name=name, num_frames=num_frames, bodies=bodies)


def _check_joint_lines(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, blocks: np.ndarray, source: str
                       ) -> None:
    """Every joint line of every block holds exactly 12 tokens: a line break before its first token and right
    after its last one."""
    first = (blocks[:, None] + np.arange(NUM_JOINTS) * JOINT_FIELDS).ravel()
    after = ends[first + JOINT_FIELDS - 1]
    following = buf[np.minimum(after, buf.size - 1)]
    line_ends = (after == buf.size) | (following == _NEWLINE) | (following == _RETURN)
    if not (line_ends.all() and (buf[starts[first] - 1] == _NEWLINE).all()):
        raise InputError(f"{source}: a joint line does not hold {JOINT_FIELDS} numbers")


def _parse_lines(raw: bytes, name: str, source: str) -> RawSkeleton:
    """The line-by-line reader of the public pipeline: each header line is one count, each joint line gives
    the fields it needs (x y z, colorX colorY: at least 7 numbers). Errors name the line and the reason."""
    lines = raw.split(b"\n")
    values: list[list[float]] = []
    frame_of: list[int] = []
    ids: list[bytes] = []
    cursor = {"line": 0}
    frame: int | None = None

    def next_line(what: str) -> tuple[int, list[bytes]]:
        number = cursor["line"]
        if number >= len(lines) or number == len(lines) - 1 and not lines[number].strip():
            where = "the header" if frame is None else f"frame {frame + 1}"
            raise InputError(f"{source}: file ends early, in {where} (expected a {what} at line {number + 1})")
        cursor["line"] += 1
        return number + 1, lines[number].split()

    def count(what: str) -> int:
        number, fields = next_line(what)
        if len(fields) != 1 or not fields[0].isdigit():
            raise InputError(f"{source}: line {number}: expected a {what}, got {b' '.join(fields)[:40]!r}")
        return int(fields[0])

    kept = 0
    for frame in range(count("frame count")):
        bodies = count("body count")
        for _ in range(bodies):
            number, info = next_line("body header")
            if not info:
                raise InputError(f"{source}: line {number}: empty body header")
            joints = count("joint count")
            if joints != NUM_JOINTS:
                raise InputError(f"{source}: line {cursor['line']}: {joints} joints in frame {frame + 1}, "
                                 f"expected {NUM_JOINTS}")
            block = []
            for _ in range(NUM_JOINTS):
                number, fields = next_line("joint line")
                if len(fields) <= KEPT_FIELDS.max():
                    raise InputError(f"{source}: line {number}: {len(fields)} numbers on a joint line, expected "
                                     f"{JOINT_FIELDS} (at least {KEPT_FIELDS.max() + 1})")
                block.append([_number(fields[k], source, number) for k in KEPT_FIELDS])
            values.append(block)
            ids.append(info[0])
        frame_of += [kept] * bodies
        kept += bool(bodies)
    if not ids:
        raise InputError(f"{source}: no frame with a body")
    return _raw_skeleton(name, kept, np.asarray(values, dtype=np.float64), frame_of, ids)


def _number(token: bytes, source: str, line: int | Callable[[], int]) -> float:
    """``float(token)``; an ``InputError`` naming the line (a number, or a function giving it) if it is none."""
    try:
        return float(token)
    except ValueError:
        number = line() if callable(line) else line
        raise InputError(f"{source}: line {number}: not a number: {token[:20]!r}") from None


def _token_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end byte offsets of the whitespace-separated tokens of ``buf``."""
    if buf.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    space = buf <= _SPACE
    bounds = np.flatnonzero(space[1:] != space[:-1]) + 1
    if not space[0]:
        bounds = np.concatenate(([0], bounds))
    if not space[-1]:
        bounds = np.concatenate((bounds, [buf.size]))
    return bounds[0::2], bounds[1::2]


class _HeaderWalker:
    """Walks frame and body headers by token offset, collecting the start token of each joint block."""

    def __init__(self, raw: bytes, starts: np.ndarray, ends: np.ndarray, source: str):
        self.raw, self.starts, self.ends, self.source = raw, starts, ends, source

    def walk(self) -> tuple[list[int], list[int], list[bytes], int]:
        """Return joint-block token offsets, their frame indices, their body ids and the kept frame count."""
        raw, starts, ends = self.raw, self.starts, self.ends
        usual = str(NUM_JOINTS).encode()
        blocks: list[int] = []
        frame_of: list[int] = []
        ids: list[bytes] = []
        kept = 0
        pos = 1
        for frame in range(self._count(0, "frame count", frame=None)):
            bodies = self._count(pos, "body count", frame)
            pos += 1
            if not bodies:
                continue
            if pos + bodies * BODY_TOKENS > len(starts):
                self._truncated(frame)
            for body in range(pos, pos + bodies * BODY_TOKENS, BODY_TOKENS):
                count = body + INFO_FIELDS
                if raw[starts[count] : ends[count]] != usual:
                    self._check_joint_count(count, frame)
                ids.append(raw[starts[body] : ends[body]])
                blocks.append(count + 1)
            frame_of += [kept] * bodies
            kept += 1
            pos += bodies * BODY_TOKENS
        return blocks, frame_of, ids, kept

    def _check_joint_count(self, pos: int, frame: int) -> None:
        joints = self._count(pos, "joint count", frame)
        if joints != NUM_JOINTS:
            raise InputError(
                f"{self.source}: line {self._line(pos)}: {joints} joints in frame {frame + 1}, expected {NUM_JOINTS}"
            )

    def _token(self, pos: int) -> bytes:
        return self.raw[self.starts[pos] : self.ends[pos]]

    def _line(self, pos: int) -> int:
        return self.raw.count(b"\n", 0, int(self.starts[pos])) + 1

    def _count(self, pos: int, what: str, frame: int | None) -> int:
        if pos >= len(self.starts):
            self._truncated(frame)
        token = self._token(pos)
        if not token.isdigit():
            raise InputError(f"{self.source}: line {self._line(pos)}: expected a {what}, got {token[:20]!r}")
        return int(token)

    def _truncated(self, frame: int | None) -> None:
        where = "header" if frame is None else f"frame {frame + 1}"
        raise InputError(f"{self.source}: file ends early, in {where}")


def _read_decimals(raw: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, source: str) -> np.ndarray:
    """Convert the tokens ``raw[starts[i]:ends[i]]`` to float64 exactly as ``float`` would.

    Plain decimals ([sign] digits [. digits]) are read column by column into an exact integer mantissa,
    divided once by an exact power of ten: a correctly rounded result, like ``float``. Up to 9 digits
    use int32 arithmetic, up to 15 int64; anything else (exponents, longer tokens, nan) goes through
    ``float``, and a token ``float`` rejects raises ``InputError`` naming the line.
    """
    padded = np.concatenate((buf, np.full(_MAX_FAST_LENGTH, _SPACE, dtype=np.uint8)))
    values, bad = _decimal_columns(padded, starts, ends, np.int32, _INT32_DIGITS)
    retry = np.flatnonzero(bad)
    if retry.size:
        values[retry], still_bad = _decimal_columns(padded, starts[retry], ends[retry], np.int64, _MAX_FAST_DIGITS)
        for i in retry[still_bad]:
            values[i] = _number(raw[starts[i] : ends[i]], source, lambda: raw.count(b"\n", 0, int(starts[i])) + 1)
    return values


def _decimal_columns(
    padded: np.ndarray, starts: np.ndarray, ends: np.ndarray, dtype: type, max_digits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised decimal reader: (values, mask of tokens it cannot read exactly with ``max_digits``)."""
    lengths = np.minimum(ends - starts, _MAX_FAST_LENGTH + 1).astype(np.uint8)
    count = len(starts)
    mantissa = np.zeros(count, dtype=dtype)
    digits = np.zeros(count, dtype=np.uint8)
    dots = np.zeros(count, dtype=np.uint8)
    fraction = np.zeros(count, dtype=np.uint8)
    for col in range(min(int(lengths.max(initial=0)), _MAX_FAST_LENGTH)):
        char = padded[starts + col]
        inside = lengths > col
        value = char - np.uint8(_ZERO)
        is_digit = (value < 10) & inside
        mantissa = np.where(is_digit, mantissa * 10 + value, mantissa)
        digits += is_digit
        dots += (char == _DOT) & inside
        fraction += is_digit & (dots > 0)
    first = padded[starts]
    signed = (first == _MINUS) | (first == _PLUS)
    bad = (digits + dots + signed != lengths) | (dots > 1) | (digits == 0) | (digits > max_digits)
    bad |= lengths > _MAX_FAST_LENGTH
    values = mantissa / _POW10[fraction]
    np.negative(values, out=values, where=first == _MINUS)
    return values, bad
