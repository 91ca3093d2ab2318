"""Evaluation outputs in a work_dir: score files, per-class accuracy with confusion matrix, right/wrong lists.

Score files come in two forms: ``<stem>_score.pkl``, a pickle of ``{sample_name: logits}`` in dataset order
that the public ensemble scripts read, and ``<stem>_score.npz`` (``names``, ``scores``, ``labels``), the
pickle-free twin our tools prefer.
"""
from __future__ import annotations

import csv
import io
import pickle
from pathlib import Path

import numpy as np

from engine.fileio import atomic_path, write_bytes_atomic, write_text_atomic
from engine.metrics import confusion_matrix, per_class_accuracy


def evaluation_picture_paths(work_dir: Path, stem: str) -> list[Path]:
    """The pictures and the confused-pairs list of an evaluation (written by ``engine.plots``)."""
    return [work_dir / f"{stem}_{suffix}" for suffix in ("confusion.png", "class_acc.png", "confused_pairs.txt")]


def score_paths(work_dir: Path, stem: str) -> list[Path]:
    """Every file an evaluation writes for ``stem`` (:func:`write_evaluation` and the pictures)."""
    return [*(work_dir / f"{stem}_{suffix}" for suffix in
              ("score.pkl", "score.npz", "each_class_acc.csv", "right.txt", "wrong.txt")),
            *evaluation_picture_paths(work_dir, stem)]


def write_scores(work_dir: Path, stem: str, names: list[str], scores: np.ndarray, labels: np.ndarray) -> None:
    """The pickle and npz score files."""
    as_dict = {name: row.astype(np.float32) for name, row in zip(names, scores)}
    write_bytes_atomic(work_dir / f"{stem}_score.pkl", pickle.dumps(as_dict, protocol=4))
    with atomic_path(work_dir / f"{stem}_score.npz", suffix=".npz") as tmp:
        np.savez(tmp, names=np.asarray(names, dtype=str), scores=scores.astype(np.float32),
                 labels=labels.astype(np.int64))


def write_class_report(work_dir: Path, stem: str, scores: np.ndarray, labels: np.ndarray,
                       class_names: list[str] | None = None) -> None:
    """CSV with one row per class: name, accuracy, support, then its row of the confusion matrix."""
    num_class = scores.shape[1]
    predictions = scores.argmax(axis=1)
    confusion = confusion_matrix(predictions, labels, num_class)
    accuracy = per_class_accuracy(confusion)
    names = class_names or [str(i) for i in range(num_class)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["class", "accuracy", "support", *[f"pred_{i}" for i in range(num_class)]])
    for i in range(num_class):
        cell = "" if np.isnan(accuracy[i]) else f"{accuracy[i]:.6f}"
        writer.writerow([names[i], cell, int(confusion[i].sum()), *confusion[i].tolist()])
    write_text_atomic(work_dir / f"{stem}_each_class_acc.csv", buffer.getvalue())


def write_right_wrong(work_dir: Path, stem: str, names: list[str], scores: np.ndarray, labels: np.ndarray) -> None:
    """``<stem>_right.txt`` / ``<stem>_wrong.txt``: one ``name,predicted,true`` line per sample."""
    predictions = scores.argmax(axis=1)
    lines = {True: [], False: []}
    for name, predicted, true in zip(names, predictions.tolist(), labels.tolist()):
        lines[predicted == true].append(f"{name},{predicted},{true}\n")
    write_text_atomic(work_dir / f"{stem}_right.txt", "".join(lines[True]))
    write_text_atomic(work_dir / f"{stem}_wrong.txt", "".join(lines[False]))


def write_evaluation(work_dir: Path, stem: str, names: list[str], scores: np.ndarray, labels: np.ndarray,
                     save_score: bool, class_names: list[str] | None = None) -> None:
    """All evaluation files of one evaluation; the score and right/wrong files only with ``save_score``."""
    write_class_report(work_dir, stem, scores, labels, class_names)
    if save_score:
        write_scores(work_dir, stem, names, scores, labels)
        write_right_wrong(work_dir, stem, names, scores, labels)


def remove_evaluation(work_dir: Path, stem: str) -> None:
    """Delete the files of an evaluation this run superseded (an earlier best epoch's)."""
    for path in score_paths(work_dir, stem):
        path.unlink(missing_ok=True)
