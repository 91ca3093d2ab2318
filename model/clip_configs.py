"""The project's own open_clip model configs (``model/open_clip_configs/*.json``), registered with open_clip.

``mmcl-demo-tiny`` is the small CLIP that ``tools.pretrain_demo_clip`` trains for the demo. Once registered,
it is built like any open_clip model: ``open_clip.create_model_and_transforms('mmcl-demo-tiny',
pretrained='<checkpoint file>')``, so the demo's encoders load through the same path as real CLIP weights.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

CONFIG_DIR = Path(__file__).with_name("open_clip_configs")


@cache
def register_project_clip_configs() -> None:
    """Add the project's model configs to open_clip's registry (once per process)."""
    import open_clip

    open_clip.add_model_config(CONFIG_DIR)
