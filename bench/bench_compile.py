"""Benchmark: does ``torch.compile`` speed up our CTR-GCN on the CPU, and what does its warm-up cost?

Run ``python -m bench.bench_compile [--repeats 5] [--dtype fp32 bf16] [--train] [--mode default]``. For
evaluation at batch 1 and 64 (and with ``--train`` a training step at batch 16), T=64, M=2: the seconds of
the compiled model's first call (compilation for that shape included), then eager and compiled timed in
interleaved rounds (``bench.timing``); a row's speed-up is eager time / compiled time. Both share the weights.
The measurements behind the project's choice to offer no compile option are in docs/performance.md ("torch.compile").
"""
from __future__ import annotations

import copy

import torch

from bench.timing import DTYPES, bench_parser, case_runs, report_case, timed
from model.ctrgcn import Model

NUM_CLASS = 60


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true",
                        help="add a training step at batch 16 (default: evaluation only)")
    parser.add_argument("--mode", default="default", help="torch.compile mode (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    eager = Model(num_class=NUM_CLASS)
    compiled_copy = copy.deepcopy(eager)
    compiled = torch.compile(compiled_copy, mode=args.mode)
    models = {"ours": compiled, "reference": eager}  # the row's speed-up: eager time / compiled time
    optimizers = {"ours": torch.optim.SGD(compiled_copy.parameters(), lr=1e-3, momentum=0.9),
                  "reference": torch.optim.SGD(eager.parameters(), lr=1e-3, momentum=0.9)}
    cases = ((("train", 16),) if args.train else ()) + (("eval", 1), ("eval", 64))
    print(f"CTR-GCN, CPU, {torch.get_num_threads()} threads, T={args.frames}, torch.compile(mode={args.mode!r}) "
          f"against eager; {args.repeats} interleaved rounds after the first (compiling) call")
    print(f"{'case':<22} {'compiled (median)':>24} {'eager (median)':>24} speed-up: median [min–max] per round")
    for dtype_name in args.dtype:
        for mode, batch in cases:
            x, y = torch.randn(batch, 3, args.frames, 25, 2), torch.randint(0, NUM_CLASS, (batch,))
            runs = case_runs(models, optimizers, mode, x, y, DTYPES[dtype_name])
            first_call = timed(runs["ours"])
            report_case(f"{mode}, b={batch}, {dtype_name}", batch, runs, args,
                        note=f"; first compiled call {first_call:.1f} s")


if __name__ == "__main__":
    main()
