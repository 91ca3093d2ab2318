"""Does bf16 autocast on the CPU (``--amp true``) keep the demo's accuracy, and how much faster is it?

    python -m bench.bench_amp [--seeds 1 2 3] [--config config/demo/joint.yaml] [--out bench/out/amp]

Trains the demo's MMCL model (``--config``; the inputs are made as ``tools.run_demo`` makes them) with each
seed in float32 and with ``--amp true``, one run at a time with every core (the order of the two flips from
seed to seed), through the real command (``main_mmcl.py``). Per run it reports the median training seconds
per epoch and the last-epoch top-1 on the test split; then the float32 weights are evaluated by
``--phase test`` with and without ``--amp true``, to show what bf16 does to an evaluation-only run (top-1,
share of equal predictions, largest logit difference). ``--control`` adds float32 runs on one thread: the
same maths summed in another order, whose differences from the float32 runs show how far any numerical change
moves a seed's result (the yardstick for bf16's). Finished runs are kept in ``--out`` and reused, so a stopped
bench resumes; run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from bench.bench_demo import claim_out, main_mmcl
from engine.errors import command
from engine.fileio import cached_json, read_json, write_text_atomic
from tools import run_demo

#: The ``--amp`` value of each precision.
PRECISIONS = {"fp32": "false", "bf16": "true"}
#: The control: float32 on one thread (``OMP_NUM_THREADS``).
CONTROL = "fp32-1thread"


def train(config: str, precision: str, seed: int, out: Path) -> dict:
    """Train one run (unless done) in ``precision`` (of ``PRECISIONS``, or ``CONTROL``): median epoch seconds,
    last top-1 and the path of its final weights."""
    work_dir = out / "runs" / f"{precision}-{seed}"
    summary = work_dir / "bench.json"
    if (done := cached_json(summary)) is not None:
        return done
    amp = PRECISIONS[precision] if precision in PRECISIONS else PRECISIONS["fp32"]
    main_mmcl(["--config", config, "--seed", str(seed), "--amp", amp, "--work-dir", str(work_dir), "--overwrite"],
              threads=1 if precision == CONTROL else None)
    results = read_json(work_dir / "results.json")
    history = read_json(work_dir / "history.json")
    epoch = results["last"]["epoch"]
    result = {"epoch_seconds": statistics.median(record["seconds"] for record in history),
              "top1": results["last"]["top1"], "weights": str(next(work_dir.glob(f"runs-{epoch}-*.pt")))}
    write_text_atomic(summary, json.dumps(result) + "\n")
    return result


def evaluate_both_ways(config: str, weights: str, seed: int, out: Path) -> dict:
    """``--phase test`` of ``weights`` in float32 and in bf16: top-1 of each, agreement of their predictions."""
    scores = {}
    for precision, amp in PRECISIONS.items():
        work_dir = out / "eval" / f"{precision}-{seed}"
        path = work_dir / f"test_{Path(weights).stem}_score.npz"
        if not path.is_file():
            main_mmcl(["--config", config, "--phase", "test", "--weights", weights, "--amp", amp,
                       "--work-dir", str(work_dir), "--overwrite"])
        scores[precision] = np.load(path)
    labels = scores["fp32"]["labels"]
    logits = {precision: s["scores"].astype(np.float64) for precision, s in scores.items()}
    top1 = {precision: float((x.argmax(1) == labels).mean()) for precision, x in logits.items()}
    return {"top1": top1, "agree": float((logits["fp32"].argmax(1) == logits["bf16"].argmax(1)).mean()),
            "max_logit_difference": float(np.abs(logits["fp32"] - logits["bf16"]).max())}


def _cell(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.mean(values):.{digits}f} ± {scale * spread:.{digits}f}"


def report(trained: dict[str, list[dict]], evaluated: list[dict], seeds: list[int]) -> str:
    """Markdown: training (epoch seconds, top-1, the paired difference against float32) and evaluation-only rows."""
    fp32 = trained["fp32"]
    speedups = sorted(a["epoch_seconds"] / b["epoch_seconds"] for a, b in zip(fp32, trained["bf16"], strict=True))
    lines = [("| training | median s / epoch (mean ± std over seeds) | last-epoch top-1 % | paired Δ top-1 vs fp32 | "
              "per seed |"), "|---|---|---|---|---|"]
    for precision, runs in trained.items():
        per_seed = ", ".join(f"{100 * r['top1']:.1f}" for r in runs)
        deltas = [r["top1"] - f["top1"] for r, f in zip(runs, fp32, strict=True)]
        lines.append(f"| {precision} | {_cell([r['epoch_seconds'] for r in runs], 1.0, 2)} | "
                     f"{_cell([r['top1'] for r in runs])} | {'—' if runs is fp32 else _cell(deltas)} | {per_seed} |")
    lines += ["", (f"bf16 / fp32: epochs {statistics.median(speedups):.2f}× faster "
                   f"[{speedups[0]:.2f}–{speedups[-1]:.2f}] (median [min–max] over seeds)"), "",
              "| evaluation only (fp32 weights) | top-1 % fp32 | top-1 % bf16 | equal predictions | max logit difference |",
              "|---|---|---|---|---|"]
    for seed, result in zip(seeds, evaluated, strict=True):
        lines.append(f"| seed {seed} | {100 * result['top1']['fp32']:.1f} | {100 * result['top1']['bf16']:.1f} | "
                     f"{100 * result['agree']:.1f} % | {result['max_logit_difference']:.3f} |")
    return "\n".join(lines) + "\n"


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="training seeds (default: 1 2 3)")
    parser.add_argument("--config", default="config/demo/joint.yaml",
                        help="a demo config, MMCL or baseline (default: %(default)s)")
    parser.add_argument("--control", action="store_true", help="add float32 runs on one thread (default: off)")
    parser.add_argument("--out", type=Path, default=Path("bench/out/amp"),
                        help="folder of the runs, reused by a later bench, and the table (default: %(default)s)")
    args = parser.parse_args(argv)
    run_demo.prepare_inputs()
    claim_out(args.out, {**run_demo.made_from("pretrained"), "config": args.config})
    control = [CONTROL] if args.control else []
    trained: dict[str, list[dict]] = {precision: [] for precision in [*PRECISIONS, *control]}
    for i, seed in enumerate(args.seeds):
        for precision in [*(PRECISIONS if i % 2 == 0 else reversed(PRECISIONS)), *control]:
            trained[precision].append(train(args.config, precision, seed, args.out))
            print(f"seed {seed} {precision}: {trained[precision][-1]}", flush=True)
    evaluated = [evaluate_both_ways(args.config, run["weights"], seed, args.out)
                 for seed, run in zip(args.seeds, trained["fp32"], strict=True)]
    text = (f"bf16 autocast against float32 on the CPU, {args.config}, seeds {args.seeds}, test split\n\n"
            + report(trained, evaluated, args.seeds))
    write_text_atomic(args.out / "table.md", text)
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
