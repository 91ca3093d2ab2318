"""Command line: train or test a skeleton action recogniser from a YAML config.

    python main_mmcl.py --config config/demo/joint.yaml
    python main_mmcl.py --config config/demo/joint.yaml --phase test --weights work_dir/demo/joint/best.pt
    torchrun --nproc_per_node 2 main_mmcl.py --config ...
"""
from __future__ import annotations

import sys

from engine.config import resolve_config
from engine.errors import command


@command
def main(argv: list[str] | None = None) -> int:
    """Run the phase the config asks for; bad input is reported on one line and gives exit status 2."""
    argv = sys.argv[1:] if argv is None else argv
    config = resolve_config(argv)
    from engine import trainer  # deferred so that config errors are reported without importing torch

    if config["phase"] == "train":
        trainer.train(config)
    else:
        trainer.test(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
