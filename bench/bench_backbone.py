"""Benchmark: our CTR-GCN / TD-GCN against the public models' structure on the CPU: training, latency, throughput.

Run ``python -m bench.bench_backbone [--models ctrgcn tdgcn] [--repeats 7] [--dtype fp32 bf16] [--threads N]
[--profile] [--public FILE]``. Cases: a training step (forward, backward, SGD) at batch 16, evaluation at
batch 1 (the per-sample latency) and at batch 64 (the throughput), T=64, M=2. Each model is timed against its
reference written as the public code is structured (``bench.reference_ctrgcn``, ``bench.reference_tdgcn``), or
against the public model itself with ``--public`` (the ``model/ctrgcn.py`` or ``model/tdgcn.py`` of a checkout
of the public repository: that file is imported and run, so only give a file you trust). Both hold the same
weights and take the same input; the two are timed alternately in each round (``bench.timing``), and each row
prints the median time of each and the median per-round speed-up with its min–max spread. ``--profile`` adds
each case's heaviest operators (``torch.profiler``, self CPU time of one call) for both models.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from torch import nn

from bench import reference_ctrgcn, reference_tdgcn
from bench.timing import bench_parser, compare
from model import ctrgcn, tdgcn

#: Per --models name: the title, our model and its public-structure reference.
BACKBONES = {
    "ctrgcn": ("CTR-GCN", ctrgcn.Model, reference_ctrgcn.Model),
    "tdgcn": ("TD-GCN", tdgcn.Model, reference_tdgcn.Model),
}
CASES = (("train", 16), ("eval", 1), ("eval", 64))
NUM_CLASS = 60


def public_model(path: Path) -> nn.Module:
    """The ``Model`` of a public model file (NTU graph, ``NUM_CLASS`` classes); the graph is this project's."""
    if not path.is_file():
        raise SystemExit(f"error: --public {path}: no such file")
    spec = importlib.util.spec_from_file_location(f"public_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "Model"):
        raise SystemExit(f"error: --public {path}: defines no Model")
    return module.Model(num_class=NUM_CLASS, graph="graph.ntu_rgb_d.Graph", graph_args={"labeling_mode": "spatial"})


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(BACKBONES), default=["ctrgcn"],
                        help="backbones to time (default: ctrgcn)")
    parser.add_argument("--public", type=Path,
                        help="time against this public model file, one --models (default: none: the public-structure "
                             "reference)")
    args = parser.parse_args(argv)
    if args.public and len(args.models) != 1:
        parser.error("--public compares one model: give one --models")
    for name in args.models:
        title, ours, reference = BACKBONES[name]
        baseline = public_model(args.public) if args.public else reference(num_class=NUM_CLASS)
        compare(f"{title} against {args.public or 'its public-structure reference'}", ours(num_class=NUM_CLASS),
                baseline, CASES, args, NUM_CLASS)


if __name__ == "__main__":
    main()
