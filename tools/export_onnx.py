"""Command: export the skeleton-only model (the inference path of MMCL) to ONNX, batch axis dynamic.

    python -m tools.export_onnx --weights work_dir/.../best.pt [--config C.yaml] --out model.onnx
                                [--opset 17] [--overwrite] [config overrides]

Any backbone of ``model/registry.py`` exports (CTR-GCN, TD-GCN, and HD-GCN once registered): FAM and FRM
are training-only, so the graph is the backbone alone. ``--weights`` is anything ``--phase test`` loads;
``--config`` defaults to the config stored in our checkpoints. The input ``skeleton`` is (N, C, T, V, M)
with T the config's test ``window_size``; the output is ``logits`` (N, num_class). The TorchScript-based
exporter is used (opset 17): it is ten times faster to export than the ``torch.export`` one and gives the
same graph for these convolutional models. Needs ``pip install -r requirements-deploy.txt``.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from engine.checkpoint import extract_state_dict, load_state, read_torch_file
from engine.errors import InputError, command
from engine.fileio import atomic_path
from engine.trainer import build_model
from tools.complexity import sample_shape
from tools.infer import run_config

OPSET = 17
INPUT, OUTPUT = "skeleton", "logits"


def export_onnx(model: nn.Module, sample: torch.Tensor, out: str | Path, opset: int = OPSET) -> None:
    """Write ``model`` (put in eval mode) traced on ``sample`` to ``out``, its batch axis dynamic."""
    model.eval()
    with atomic_path(out, suffix=".onnx") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks traced as constants
        torch.onnx.export(model, (sample,), str(tmp), input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}, opset_version=opset,
                          dynamo=False)


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="checkpoint or skeleton weights file")
    parser.add_argument("--config", help="the model's YAML config (default: the one stored in --weights)")
    parser.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file (default: refuse)")
    args, overrides = parser.parse_known_args(argv)
    if args.out.exists() and not args.overwrite:
        raise InputError(f"{args.out} exists: pass --overwrite to replace it")
    content = read_torch_file(args.weights)
    config = run_config(content, args.weights, args.config, overrides)
    model = build_model(config, None)
    load_state(model, extract_state_dict(content, args.weights), args.weights, config["ignore_weights"])
    shape = sample_shape(config)
    export_onnx(model, torch.zeros(shape), args.out, args.opset)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MB, opset {args.opset}): "
          f"{INPUT} (batch, {', '.join(map(str, shape[1:]))}) -> {OUTPUT} (batch, num_class)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
