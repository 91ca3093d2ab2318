"""Command: gather the ``results.json`` of training runs into one results table (Markdown and CSV).

    python -m tools.collect_results work_dir/ [more work_dirs ...] [--csv results.csv] [--markdown results.md]

Every folder holding a ``results.json`` (searched recursively under each argument) is a run; its
``config.yaml`` tells the model, the MMCL helpers (FAM / FRM) and the command's ``--config`` path,
``config/<benchmark>/<stream>.yaml`` (a ``baseline_`` prefix is dropped from the stream). The Markdown table
is shaped like the README's Results table: one row per model, method and stream, one column per benchmark,
cells the last epoch's top-1 with the best in brackets, then parameters and GMACs per sample of the
skeleton-only model. The CSV has one line per run. A warning goes to stderr when runs of one benchmark
were tested on different numbers of samples.
"""
from __future__ import annotations

import argparse
import csv
import io
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.config import resolve_config
from engine.errors import InputError, command
from engine.fileio import read_json, read_text, write_text_atomic
from engine.objective import mmcl_settings
from tools.complexity import model_cost

COLUMNS = ("work_dir", "benchmark", "stream", "model", "method", "last_top1", "last_epoch", "best_top1",
           "best_epoch", "test_samples", "parameters", "gmacs")


def config_path_of(work_dir: Path) -> Path:
    """The ``--config`` path of the command that made the run (first line of its ``config.yaml``), or the
    work_dir itself when the command had none."""
    first = read_text(work_dir / "config.yaml").splitlines()[0]
    words = shlex.split(first.partition(":")[2])
    return Path(words[words.index("--config") + 1]) if "--config" in words[:-1] else work_dir


def read_run(work_dir: Path, costs: dict[str, tuple[int, float]]) -> dict[str, Any]:
    """One CSV row of the run in ``work_dir``; ``costs`` caches parameters and GMACs by model config."""
    results = read_json(work_dir / "results.json")
    if not isinstance(results, dict) or not isinstance(results.get("last"), dict):
        raise InputError(f"{work_dir / 'results.json'}: not a training run's results (no 'last' metrics)")
    config = resolve_config(["--config", str(work_dir / "config.yaml")])
    settings = mmcl_settings(config)
    key = repr((config["model"], config["model_args"], config["test_feeder_args"].get("window_size")))
    if key not in costs:
        costs[key] = model_cost(config)
    origin = config_path_of(work_dir)
    last, best = results["last"], results.get("best", {})
    return {
        "work_dir": str(work_dir), "benchmark": origin.parent.name, "stream": origin.stem.removeprefix("baseline_"),
        "model": config["model"], "method": "MMCL" if settings["fam"] or settings["frm"] else "baseline",
        "last_top1": last.get("top1"), "last_epoch": last.get("epoch"),
        "best_top1": best.get("top1"), "best_epoch": best.get("epoch"),
        "test_samples": results.get("test_samples"), "parameters": costs[key][0], "gmacs": costs[key][1],
    }


def find_runs(paths: Sequence[Path]) -> list[Path]:
    """The folders holding a ``results.json`` under ``paths``, sorted."""
    runs = set()
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        runs.update(found.parent for found in ([path] if path.is_file() else path.rglob("results.json")))
    if not runs:
        raise InputError(f"no results.json under {', '.join(map(str, paths))}")
    return sorted(runs)


def size_warnings(rows: list[dict[str, Any]]) -> list[str]:
    """One line per benchmark whose runs were tested on different numbers of samples."""
    lines = []
    for benchmark in sorted({row["benchmark"] for row in rows}):
        sizes = {row["work_dir"]: row["test_samples"] for row in rows
                 if row["benchmark"] == benchmark and row["test_samples"] is not None}
        if len(set(sizes.values())) > 1:
            shown = ", ".join(f"{folder}: {size}" for folder, size in sizes.items())
            lines.append(f"warning: {benchmark}: runs disagree on the test set size ({shown})")
    return lines


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def _span(values: list[float], form: str) -> str:
    low, high = form.format(min(values)), form.format(max(values))
    return low if low == high else f"{low}–{high}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Top-1 (%) per model, method and stream (rows) and benchmark (columns): ``last (best)``."""
    benchmarks = sorted({row["benchmark"] for row in rows})
    groups: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["method"], row["stream"]), {})[row["benchmark"]] = row
    lines = ["| | " + " | ".join(benchmarks) + " | params (M) | GMACs |",
             "|---|" + "---|" * (len(benchmarks) + 2)]
    for (model, method, stream), cells in sorted(groups.items()):
        shown = [f"{_percent(c['last_top1'])} ({_percent(c['best_top1'])})" if (c := cells.get(b)) else "not run"
                 for b in benchmarks]
        runs = list(cells.values())
        lines.append(f"| {model} {stream}, {method} | " + " | ".join(shown)
                     + f" | {_span([r['parameters'] / 1e6 for r in runs], '{:.2f}')}"
                     + f" | {_span([r['gmacs'] for r in runs], '{:.3f}')} |")
    note = "\nTop-1 (%) of the last epoch, best epoch's in brackets (chosen on the test set: quote the last).\n"
    return "\n".join(lines) + "\n" + note


def csv_text(rows: list[dict[str, Any]]) -> str:
    """One line per run, the columns of ``COLUMNS``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="work_dirs (or folders of them)")
    parser.add_argument("--csv", type=Path, help="also write one line per run to this CSV file (default: no CSV)")
    parser.add_argument("--markdown", type=Path,
                        help="also write the table to this Markdown file (default: printed only)")
    args = parser.parse_args(argv)
    costs: dict[str, tuple[int, float]] = {}
    rows = [read_run(run, costs) for run in find_runs(args.paths)]
    for line in size_warnings(rows):
        print(line, file=sys.stderr)
    table = markdown_table(rows)
    print(table, end="")
    if args.markdown is not None:
        write_text_atomic(args.markdown, table)
    if args.csv is not None:
        write_text_atomic(args.csv, csv_text(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
