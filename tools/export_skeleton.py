"""Export the skeleton-only model of a training checkpoint: the backbone's state dict, nothing else.

    python -m tools.export_skeleton --checkpoint work_dir/ntu120-xsub/joint/best.pt --out ctrgcn_joint.pt

The output is a bare state dict (as the public CTR-GCN ``runs-*.pt`` files are): it loads with
``strict=True`` into ``model.ctrgcn.Model`` and into the public CTR-GCN model, and costs exactly what the
plain backbone costs at inference. Public MMCL checkpoints are accepted as input too.
"""
from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from pathlib import Path

import torch

from engine.checkpoint import extract_state_dict, read_torch_file
from engine.errors import InputError, command
from engine.fileio import atomic_path


def export_skeleton(checkpoint: str | Path, out: str | Path, overwrite: bool = False) -> int:
    """Write the backbone weights of ``checkpoint`` to ``out``; return the number of tensors written."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise InputError(f"{out} exists: pass --overwrite to replace it")
    state = extract_state_dict(read_torch_file(checkpoint), checkpoint)
    if not state:
        raise InputError(f"{checkpoint}: holds no backbone weights")
    with atomic_path(out) as tmp:
        torch.save(OrderedDict((key, value.contiguous()) for key, value in state.items()), tmp)
    return len(state)


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="our training checkpoint or a public MMCL one")
    parser.add_argument("--out", required=True, help="where to write the skeleton-only weights")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file (default: refuse)")
    args = parser.parse_args(argv)
    count = export_skeleton(args.checkpoint, args.out, args.overwrite)
    size = Path(args.out).stat().st_size / 2**20
    print(f"wrote {count} tensors ({size:.1f} MB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
