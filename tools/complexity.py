"""Command: parameters and GMACs per sample of a config's skeleton model (the inference path).

    python -m tools.complexity --config config/nturgbd120-cross-subject/joint.yaml [config overrides]

The input is one sample of the test feeder's shape: 3 channels, ``test_feeder_args.window_size`` frames
(64 if unset), ``model_args.num_point`` joints and ``num_person`` persons. MMCL's FAM and FRM are
training-only, so this is also the size and cost of an MMCL model at test time.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

import torch

from engine.config import resolve_config
from engine.errors import command
from engine.trainer import build_model
from model.complexity import count_parameters, macs_per_sample

DEFAULT_WINDOW = 64


@command
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    config = resolve_config(argv)
    model = build_model(config, None)
    args = config["model_args"]
    frames = config["test_feeder_args"].get("window_size", DEFAULT_WINDOW)
    shape = (1, args.get("in_channels", 3), frames, args.get("num_point", 25), args.get("num_person", 2))
    gmacs = macs_per_sample(model, torch.zeros(shape)) / 1e9
    print(f"{config['model']} ({config['config']}): {count_parameters(model):,} parameters, "
          f"{gmacs:.3f} GMACs per sample of shape {tuple(shape[1:])} (C, T, V, M)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
