"""Benchmark: our CTR-GCN against the public model's structure (``bench.reference_ctrgcn``) on the CPU.

Run ``python -m bench.bench_backbone [--repeats 7] [--dtype fp32 bf16] [--threads N]``. Cases: a training step
(forward, backward, SGD) at batch 16 and evaluation at batch 1 and 64, T=64, M=2. Both models hold the same
weights and take the same input; the two are timed alternately in each round (``bench.timing``), and each row
prints the median time of each and the median per-round speed-up with its min–max spread.
"""
from __future__ import annotations

from bench.reference_ctrgcn import Model as ReferenceModel
from bench.timing import bench_parser, compare
from model.ctrgcn import Model

CASES = (("train", 16), ("eval", 1), ("eval", 64))


def main(argv: list[str] | None = None) -> None:
    args = bench_parser(__doc__.splitlines()[0]).parse_args(argv)
    reference = ReferenceModel(num_class=60)
    compare("CTR-GCN", Model(num_class=60), reference, CASES, args)


if __name__ == "__main__":
    main()
