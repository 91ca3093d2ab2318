"""The paper's six-stream recipe end to end: four CTR-GCN MMCL streams and two HD-GCN streams, trained by the
command line on the tiny dataset, fused by the upstream ensemble command."""
from __future__ import annotations

import re

import numpy as np
import pytest

import main_mmcl
from ensemble import ensemble
from ensemble.presets import PRESETS
from tests.conftest import NUM_CLASS
from tests.test_cli_mmcl import stores  # noqa: F401 (fixture)
from tools.safe_pickle import load_pickle

#: Stream tag: (backbone, bone, motion), as the configs of docs/reproduce.md.
STREAMS = {"J": ("ctrgcn", False, False), "B": ("ctrgcn", True, False), "JM": ("ctrgcn", False, True),
           "BM": ("ctrgcn", True, True), "HDJ": ("hdgcn", False, False), "HDB": ("hdgcn", True, False)}
MODEL_ARGS = {"num_class": NUM_CLASS, "num_point": 25, "num_person": 2, "base_channel": 8}
GRAPHS = {"ctrgcn": {"graph": "graph.ntu_rgb_d.Graph"},
          "hdgcn": {"graph": "graph.ntu_rgb_d_hierarchy.Graph", "graph_args": {"labeling_mode": "spatial", "CoM": 21}}}


@pytest.mark.slow
def test_six_streams_train_and_fuse_with_the_upstream_command(tmp_path, make_config, dataset_dir, stores, capsys):  # noqa: F811
    mmcl = {"fam": True, "frm": True, "rgb_features": str(stores["rgb"]), "text_features": str(stores["text"])}
    scores = {}
    for tag, (model, bone, motion) in STREAMS.items():
        folder = tmp_path / tag
        config = make_config(folder, model=model, model_args={**MODEL_ARGS, **GRAPHS[model]}, num_epoch=1, mmcl=mmcl)
        args = ["--config", config, "--train-feeder-args", f"bone={bone}", f"vel={motion}",
                "--test-feeder-args", f"bone={bone}", f"vel={motion}"]
        assert main_mmcl.main([str(a) for a in args]) == 0
        scores[tag] = folder / "run" / "epoch1_test_score.pkl"
    capsys.readouterr()

    argv = [a for tag in STREAMS for a in (f"--{tag}_Score", str(scores[tag]))]
    argv += ["--val_sample", str(dataset_dir / "test_names.txt"), "--preset", "mmcl-ntu120-xsub-6s"]
    assert ensemble.main(argv) == 0
    out = capsys.readouterr().out
    top1 = float(re.search(r"fused \(weights [\d. ]+\): top-1 ([\d.]+)%", out).group(1))

    names = (dataset_dir / "test_names.txt").read_text().split()
    labels = np.array([int(name[-3:]) - 1 for name in names])
    fused = 0.0
    for weight, tag in zip(PRESETS["mmcl-ntu120-xsub-6s"].weights, STREAMS):
        stream = load_pickle(scores[tag])
        fused = fused + weight * np.stack([stream[name] for name in names]).astype(np.float64)
    assert top1 == round(100 * float(np.mean(fused.argmax(1) == labels)), 2)
