"""Benchmark: our HD-GCN against the straightforward per-layer reference (``bench.reference_hdgcn``) on the CPU.

Run ``python -m bench.bench_hdgcn [--repeats 7] [--dtype fp32 bf16] [--threads N]``. Cases: a training step at
batch 16 and evaluation at batch 1, 16 and 64 (CoM 21, T=64, M=2), timed as ``bench.bench_backbone`` does
(``bench.timing``: same weights, interleaved rounds, medians and per-round speed-ups with their spread).
"""
from __future__ import annotations

from bench.reference_hdgcn import Model as ReferenceModel
from bench.timing import bench_parser, compare
from model.hdgcn import Model

CASES = (("train", 16), ("eval", 1), ("eval", 16), ("eval", 64))


def main(argv: list[str] | None = None) -> None:
    args = bench_parser(__doc__.splitlines()[0]).parse_args(argv)
    reference = ReferenceModel(num_class=60)
    compare("HD-GCN (CoM 21)", Model(num_class=60), reference, CASES, args)


if __name__ == "__main__":
    main()
