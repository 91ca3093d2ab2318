"""One prompt's output folder of ``answer_questions``: appended while running, a text feature store when complete.

    <folder>/partial/answers.jsonl     {"name", "question", "answer", "chunk", "row"} appended batch by batch
    <folder>/partial/chunks/<c>.npy     each batch's features (hidden / token-ids), row ``row`` for that name
    <folder>/{features.npy, names.txt, answers.jsonl, meta.json}   the store, written once every name is answered

A stopped run resumes from ``partial/`` (names already answered are skipped, a cut-off last line is redone);
once ``meta.json`` is written the store is complete and ``partial/`` is removed.
"""
from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.fileio import read_json, read_text, write_text_atomic
from feeders.feature_store import FeatureStore, write_feature_store
from feeders.prepared import write_npy_atomic
from feeders.skeleton_store import load_npy
from llm_features.encode_answers import read_answers


def drop_incomplete_line(path: Path) -> bool:
    """Truncate ``path`` after its last newline (a run stopped mid-write); True if something was dropped."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end == len(data):
        return False
    with path.open("r+b") as file:
        file.truncate(end)
    return True


def answered_rows(path: Path, question: str) -> list[dict[str, Any]]:
    """The rows already in the answers file ``path`` (none if absent); answers to another question are an error."""
    if not path.is_file():
        return []
    if drop_incomplete_line(path):
        print(f"{path}: dropped an incomplete last line, its sample is asked again", file=sys.stderr)
    if not read_text(path).strip():
        return []
    rows = read_answers(path)
    others = sorted({str(row.get("question")) for row in rows} - {question})
    if others:
        raise InputError(f"{path} holds answers to another question ({others[0]!r}): ask that one or use another --out")
    return rows


class PromptRun:
    """Answers (and features) for one question, appended to ``answers``; ``chunks`` holds feature batches."""

    def __init__(self, answers: Path, question: str, chunks: Path | None = None) -> None:
        self.answers, self.question, self.chunks = answers, question, chunks
        self.rows = answered_rows(answers, question)

    @property
    def done(self) -> set[str]:
        return {row["name"] for row in self.rows}

    def append(self, names: Sequence[str], answers: Sequence[str], features: np.ndarray | None) -> None:
        """Add one batch: its feature chunk first (atomically), then its answer lines, flushed."""
        extra: list[dict[str, int]] = [{} for _ in names]
        if features is not None:
            chunk = len(self.rows)
            write_npy_atomic(self.chunks / f"{chunk:09d}.npy", features)
            extra = [{"chunk": chunk, "row": row} for row in range(len(names))]
        rows = [{"name": name, "question": self.question, "answer": answer, **more}
                for name, answer, more in zip(names, answers, extra)]
        self.answers.parent.mkdir(parents=True, exist_ok=True)
        with self.answers.open("a", encoding="utf-8") as file:
            file.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        self.rows.extend(rows)

    def features(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        """The stored features of ``rows``, chunk by chunk; a missing chunk is an ``InputError`` naming it."""
        groups: dict[int, list[int]] = {}
        for index, row in enumerate(rows):
            if not isinstance(row.get("chunk"), int) or not isinstance(row.get("row"), int):
                raise InputError(f"{self.answers}: sample {row['name']!r} has no feature chunk")
            groups.setdefault(row["chunk"], []).append(index)
        out = None
        for chunk, indices in groups.items():
            path = self.chunks / f"{chunk:09d}.npy"
            data = load_npy(path) if path.is_file() else None
            if data is None or data.ndim != 2:
                raise InputError(f"{path}: feature chunk missing or not (B, D) (sample {rows[indices[0]]['name']!r});"
                                 f" delete {self.answers} to start this prompt again")
            if out is None:
                out = np.empty((len(rows), data.shape[1]), data.dtype)
            out[indices] = data[[rows[index]["row"] for index in indices]]
        return out


class PromptFolder:
    """``<folder>`` of one prompt: resumable ``partial/`` until complete, then a text feature store."""

    def __init__(self, folder: Path, question: str, meta: dict[str, Any]) -> None:
        self.folder, self.meta = folder, {**meta, "kind": "text", "question": question}
        self.complete = (folder / "meta.json").is_file()
        partial = folder / "partial"
        settings = folder / "meta.json" if self.complete else partial / "settings.json"
        if settings.is_file():
            before = read_json(settings)
            changed = sorted(key for key in self.meta if not isinstance(before, dict) or before.get(key) != self.meta[key])
            if changed:
                raise InputError(f"{settings}: made with other settings ({changed[0]}: "
                                 f"{before.get(changed[0]) if isinstance(before, dict) else before!r}, now "
                                 f"{self.meta[changed[0]]!r}): use another --out")
        elif not self.complete:
            write_text_atomic(settings, json.dumps(self.meta, indent=2) + "\n")
        self.run = None if self.complete else PromptRun(partial / "answers.jsonl", question, partial / "chunks")

    def todo(self, names: Sequence[str]) -> list[str]:
        """The names still to answer; a complete store lacking some of ``names`` is an error."""
        if self.complete:
            store = FeatureStore(self.folder, "text")
            missing = [name for name in names if name not in store.index]
            if missing:
                raise InputError(f"{self.folder} is a complete store without {len(missing)} of these samples "
                                 f"(e.g. {missing[0]}): use another --out")
            return []
        done = self.run.done
        return [name for name in names if name not in done]

    def ready(self, names: Sequence[str]) -> bool:
        """True when every one of ``names`` is answered."""
        return self.complete or not self.todo(names)

    def finish(self, names: Sequence[str], encode: Callable[[list[str]], np.ndarray] | None = None) -> None:
        """Write the store, rows in the order of ``names`` (all answered); ``encode`` makes clip-text features
        from the answers, otherwise the stored chunks are the features."""
        by_name = {row["name"]: row for row in self.run.rows}
        rows = [by_name[name] for name in names]
        features = encode([row["answer"] for row in rows]) if encode else self.run.features(rows)
        answers = [{key: row[key] for key in ("name", "question", "answer")} for row in rows]
        write_feature_store(self.folder, features, list(names), self.meta, answers=answers)
        shutil.rmtree(self.folder / "partial")
        self.complete = True
