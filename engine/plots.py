"""Evaluation and training pictures (PNG, matplotlib's non-interactive Agg backend) and the confused-pairs list.

The confusion matrix has normalised rows and its classes ordered by a hierarchical clustering of the
confusions, so that classes mistaken for one another sit side by side (readable at 120 classes); the
most confused pairs are listed beside it. Drawing is kept cheap: images are raster, fonts small.
"""
from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from scipy.cluster.hierarchy import leaves_list, linkage

from engine.fileio import atomic_path, write_text_atomic
from engine.metrics import per_class_accuracy
from engine.reports import evaluation_picture_paths

matplotlib.use("Agg")  # files only, never a window (pyplot switches backends while no figure is open)

#: How many confused pairs the text list and the confusion picture show.
TOP_PAIRS = 10
DPI = 100


def _save(figure: plt.Figure, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.1)
    plt.close(figure)


def _names(class_names: Sequence[str] | None, num_class: int) -> list[str]:
    """Names of classes 0 .. num_class - 1 (a dataset's list may name more classes than a model scores)."""
    if class_names and len(class_names) >= num_class:
        return list(class_names[:num_class])
    return [str(i) for i in range(num_class)]


def normalised_rows(confusion: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows of absent classes stay zero)."""
    support = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, support, out=np.zeros(confusion.shape), where=support > 0)


def cluster_order(rates: np.ndarray) -> np.ndarray:
    """Class order that puts mutually confused classes next to each other (average-linkage clustering of
    the symmetrised off-diagonal confusion rates)."""
    if len(rates) < 3:
        return np.arange(len(rates))
    similarity = rates + rates.T
    np.fill_diagonal(similarity, 0)
    features = np.hstack([similarity, np.eye(len(rates)) * similarity.max(initial=1e-6)])
    return leaves_list(linkage(features, method="average"))


def confused_pairs(confusion: np.ndarray, count: int = TOP_PAIRS) -> list[tuple[int, int, int, float]]:
    """The ``count`` largest off-diagonal cells as (true, predicted, samples, share of the true class)."""
    rates = normalised_rows(confusion)
    off = confusion.astype(np.float64).copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")[:count]
    pairs = [(int(i), int(j)) for i, j in zip(*np.unravel_index(flat, off.shape))]
    return [(i, j, int(confusion[i, j]), float(rates[i, j])) for i, j in pairs if off[i, j] > 0]


def pairs_text(confusion: np.ndarray, class_names: Sequence[str] | None) -> str:
    """One ``true -> predicted: n samples (share)`` line per most confused pair."""
    names = _names(class_names, len(confusion))
    return "".join(f"{names[i]} -> {names[j]}: {n} samples ({100 * share:.1f}% of {names[i]})\n"
                   for i, j, n, share in confused_pairs(confusion))


def draw_confusion(confusion: np.ndarray, class_names: Sequence[str] | None, path: Path) -> None:
    """The row-normalised confusion matrix, classes in cluster order, the top pairs listed on the right."""
    num_class = len(confusion)
    names = _names(class_names, num_class)
    rates = normalised_rows(confusion)
    order = cluster_order(rates)
    side = min(max(6.0, num_class * 0.11), 16.0)
    width, margin, square = side + 5, 2.2, side - 3.0  # inches: the tick labels take ``margin``
    figure = plt.figure(figsize=(width, side))
    axis = figure.add_axes((margin / width, margin / side, square / width, square / side))
    image = axis.imshow(rates[np.ix_(order, order)], cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    font = max(3.0, min(9.0, 700 / max(num_class, 1) / 6))
    ticks = np.arange(num_class)
    axis.set_xticks(ticks, [names[i] for i in order], rotation=90, fontsize=font)
    axis.set_yticks(ticks, [names[i] for i in order], fontsize=font)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title("confusion (rows normalised, classes clustered)")
    figure.colorbar(image, ax=axis, fraction=0.04)
    lines = pairs_text(confusion, class_names).splitlines()
    figure.text(1 - 4.4 / width, 0.95, "most confused (true -> predicted)\n\n"
                + "\n".join(textwrap.fill(line, 55, subsequent_indent="    ") for line in lines),
                va="top", fontsize=8)
    _save(figure, path)


def draw_class_accuracy(confusion: np.ndarray, class_names: Sequence[str] | None, path: Path) -> None:
    """Per-class accuracy as horizontal bars, worst class at the top."""
    names = _names(class_names, len(confusion))
    accuracy = np.nan_to_num(per_class_accuracy(confusion), nan=0.0)
    order = np.argsort(accuracy, kind="stable")[::-1]
    height = min(max(3.0, len(names) * 0.12), 16.0)
    figure, axis = plt.subplots(figsize=(7, height))
    axis.barh(np.arange(len(names)), 100 * accuracy[order], color="#3478c6")
    axis.set_yticks(np.arange(len(names)), [names[i] for i in order],
                    fontsize=max(3.0, min(9.0, 900 / max(len(names), 1) / 6)))
    axis.set_xlim(0, 100)
    axis.set_xlabel("accuracy (%)")
    axis.set_title(f"per-class accuracy (mean {100 * accuracy.mean():.1f}%)")
    figure.tight_layout()
    _save(figure, path)


def write_evaluation_pictures(work_dir: Path, stem: str, confusion: np.ndarray,
                              class_names: Sequence[str] | None) -> None:
    """The confusion matrix and per-class accuracy PNGs and the confused-pairs list of one evaluation."""
    confusion_png, accuracy_png, pairs_txt = evaluation_picture_paths(work_dir, stem)
    draw_confusion(confusion, class_names, confusion_png)
    draw_class_accuracy(confusion, class_names, accuracy_png)
    write_text_atomic(pairs_txt, pairs_text(confusion, class_names))


def draw_curves(history: list[dict[str, float]], path: str | os.PathLike) -> None:
    """Training curves per epoch: each loss term, train / test top-1, learning rate (three panels)."""
    epochs = [record["epoch"] for record in history]
    figure, (losses, accuracy, lr) = plt.subplots(1, 3, figsize=(15, 4))
    terms = sorted({key for record in history for key in record if key.startswith("loss")})
    for term in terms:
        losses.plot(*_series(history, term), marker=".", label=term)
    losses.set_title("training losses")
    losses.legend(fontsize=8)
    accuracy.plot(*_series(history, "acc", 100), marker=".", label="train")
    accuracy.plot(*_series(history, "test_top1", 100), marker="o", label="test top-1")
    accuracy.set_title("top-1 (%)")
    accuracy.legend(fontsize=8)
    lr.plot(epochs, [record["lr"] for record in history], marker=".")
    lr.set_title("learning rate")
    for axis in (losses, accuracy, lr):
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    figure.tight_layout()
    _save(figure, Path(path))


def _series(history: list[dict[str, float]], key: str, scale: float = 1.0) -> tuple[list[int], list[float]]:
    """(epochs, values) of the records that hold ``key``."""
    kept = [record for record in history if key in record]
    return [record["epoch"] for record in kept], [scale * record[key] for record in kept]
