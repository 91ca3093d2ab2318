"""Command: parameters and GMACs per sample of a config's skeleton model (the inference path).

    python -m tools.complexity --config config/nturgbd120-cross-subject/joint.yaml [config overrides]

The input is one sample of the test feeder's shape: 3 channels, ``test_feeder_args.window_size`` frames
(64 if unset), ``model_args.num_point`` joints and ``num_person`` persons. MMCL's FAM and FRM are
training-only, so this is also the size and cost of an MMCL model at test time.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import torch

from engine.config import resolve_config
from engine.errors import command
from engine.trainer import build_model
from model.complexity import count_parameters, macs_per_sample

DEFAULT_WINDOW = 64


def sample_shape(config: dict[str, Any], batch: int = 1) -> tuple[int, int, int, int, int]:
    """(N, C, T, V, M) of a test batch: ``test_feeder_args.window_size`` frames and the model's joints and persons."""
    args = config["model_args"]
    frames = config["test_feeder_args"].get("window_size", DEFAULT_WINDOW)
    return batch, args.get("in_channels", 3), frames, args.get("num_point", 25), args.get("num_person", 2)


def model_cost(config: dict[str, Any]) -> tuple[int, float]:
    """Parameters and GMACs per sample of the config's skeleton model."""
    model = build_model(config, None)
    return count_parameters(model), macs_per_sample(model, torch.zeros(sample_shape(config))) / 1e9


@command
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    config = resolve_config(argv)
    parameters, gmacs = model_cost(config)
    print(f"{config['model']} ({config['config']}): {parameters:,} parameters, "
          f"{gmacs:.3f} GMACs per sample of shape {sample_shape(config)[1:]} (C, T, V, M)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
