"""Classification metrics from a score matrix: top-k accuracy, confusion matrix, per-class accuracy."""
from __future__ import annotations

import numpy as np


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows whose label is among the ``k`` highest scores (ties broken by index, like argsort)."""
    if len(labels) == 0:
        return 0.0
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_class: int) -> np.ndarray:
    """``C[i, j]`` = number of samples of class ``i`` predicted as ``j``."""
    flat = labels.astype(np.int64) * num_class + predictions.astype(np.int64)
    return np.bincount(flat, minlength=num_class * num_class).reshape(num_class, num_class)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class (NaN for classes absent from the labels)."""
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(confusion) / support, np.nan)
