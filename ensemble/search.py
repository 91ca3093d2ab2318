"""Fusing streams by a weighted sum of raw logits, and searching the weights on held-out data.

The search is coordinate ascent: in each round every weight in turn takes the value of a fixed grid (or
keeps its current value) that gives the most correct held-out top-1 predictions, the others held fixed;
ties go to the smaller value. Fused predictions do not change when all weights are scaled, so the start
is scaled to a largest weight of 1 and the grid spans 0..2. Deterministic; it never sees test data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Values each weight may take: 0, 0.1, ..., 2.0.
GRID = np.arange(21) / 10
MAX_ROUNDS = 10
#: Rows scored at once for all grid values: (grid, rows, classes) float64 stays a few MB.
BLOCK_ROWS = 256


@dataclass(frozen=True)
class SearchResult:
    """Weights found, held-out correct counts at the start and at the end, and rounds run."""

    weights: np.ndarray
    start_correct: int
    correct: int
    rounds: int


def fuse(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_s weights[s] * scores[s]`` of (S, N, K) scores, computed in float64 one stream at a time."""
    fused = np.zeros(scores.shape[1:], dtype=np.float64)
    for weight, stream in zip(weights, scores):
        if weight:  # a stream weighing 0 adds nothing (scores are finite)
            fused += np.multiply(stream, weight, dtype=np.float64)
    return fused


def count_correct(scores: np.ndarray, labels: np.ndarray) -> int:
    """Rows of (N, K) ``scores`` whose top-1 class is the label."""
    return int(np.count_nonzero(scores.argmax(axis=1) == labels))


def search_weights(scores: np.ndarray, labels: np.ndarray, start: np.ndarray,
                   grid: np.ndarray = GRID, max_rounds: int = MAX_ROUNDS) -> SearchResult:
    """Non-negative weights maximising the top-1 of ``fuse(scores, weights)`` against ``labels`` (held-out)."""
    weights = np.asarray(start, dtype=np.float64) / np.max(start)
    start_correct = count_correct(fuse(scores, weights), labels)
    correct, rounds = start_correct, 0
    for rounds in range(1, max_rounds + 1):
        changed = False
        for stream in range(len(weights)):
            value, correct = _best_value(scores, labels, weights, stream, grid)
            changed |= bool(value != weights[stream])
            weights[stream] = value
        if not changed:
            break
    return SearchResult(weights, start_correct, correct, rounds)


def _best_value(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray, stream: int,
                grid: np.ndarray) -> tuple[float, int]:
    """The best value of ``weights[stream]`` among the grid and its current value, and its correct count."""
    others = np.where(np.arange(len(weights)) == stream, 0.0, weights)
    candidates = np.union1d(grid, weights[stream])
    if not others.any():  # all-zero weights would predict class 0 everywhere
        candidates = candidates[candidates > 0]
    counts = _correct_per_candidate(fuse(scores, others), scores[stream], labels, candidates)
    best = int(np.argmax(counts))  # first maximum: the smallest tied value
    return float(candidates[best]), int(counts[best])


def _correct_per_candidate(rest: np.ndarray, stream: np.ndarray, labels: np.ndarray,
                           candidates: np.ndarray) -> np.ndarray:
    """Correct top-1 count of ``rest + c * stream`` for every candidate ``c``, a block of rows at a time."""
    counts = np.zeros(len(candidates), dtype=np.int64)
    factors = candidates[:, None, None]
    buffer = np.empty((len(candidates), BLOCK_ROWS, rest.shape[1]))  # reused: fresh temporaries cost 5x
    for start in range(0, len(labels), BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        fused = buffer[:, : len(labels[rows])]
        np.multiply(factors, stream[rows], out=fused)
        fused += rest[rows]
        counts += np.count_nonzero(fused.argmax(axis=2) == labels[rows], axis=1)
    return counts
