"""Co-learning helpers as plug-ins: a user's helper, backbone, feeder and graph by dotted path; the attribute
store and the positive control (a linear head on F_g predicting a per-sample attribute), checked against its
formula; one error line for each ordinary mistake in ``mmcl.helpers``."""
from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

import main_mmcl
from engine.config import resolve_config
from engine.data import build_dataset, train_loader
from engine.distributed import Runtime
from engine.errors import InputError
from engine.objective import build_objective
from engine.trainer import build_model
from feeders.feature_store import FeatureStore, write_attribute_store, write_feature_store
from tests.conftest import NUM_CLASS
from tools import make_attribute_store

ROOT = Path(__file__).resolve().parents[1]

USER_PACKAGE = {
    "__init__.py": "",
    "nets.py": '''
        from model.ctrgcn import Model


        class Net(Model):
            """A user's backbone: CTR-GCN at a width of its choosing."""

            def __init__(self, width=8, **kwargs):
                super().__init__(base_channel=width, **kwargs)
    ''',
    "graphs.py": '''
        from graph.tools import SkeletonGraph


        class Chain(SkeletonGraph):
            """25 joints in a chain."""

            num_node = 25
            inward_one_based = tuple((j + 1, j) for j in range(1, 25))
    ''',
    "feeders.py": '''
        from feeders.ntu import NTUFeeder


        class Mirrored(NTUFeeder):
            """A user's dataset: the NTU feeder, mirrored left to right."""

            def __getitem__(self, index):
                data, label, index = super().__getitem__(index)
                data = data.copy()
                data[0] *= -1
                return data, label, index
    ''',
    "helpers.py": '''
        import torch
        from torch import nn

        from model.helpers import CoLearningHelper


        class Calm(CoLearningHelper):
            """Penalise large scores (shifted by a learnt bias), times ``scale``."""

            def __init__(self, context, scale=1.0):
                super().__init__()
                self.bias = nn.Parameter(torch.zeros(context.num_class))
                self.scale, self.loss_name = scale, f"loss_{context.name}"

            def losses(self, step, inputs):
                return {self.loss_name: self.scale * (step.logits + self.bias).pow(2).mean()}
    ''',
}


@pytest.fixture
def user_package(tmp_path, monkeypatch) -> str:
    """A package ``mypkg`` outside the repository, importable as the user's own code would be."""
    root = tmp_path / "site" / "mypkg"
    root.mkdir(parents=True)
    for name, text in USER_PACKAGE.items():
        (root / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return "mypkg"


def test_a_users_helper_backbone_feeder_and_graph_plug_in_by_dotted_path(user_package, make_config, tmp_path):
    config = make_config(tmp_path, model="mypkg.nets.Net", feeder="mypkg.feeders.Mirrored",
                         model_args={"num_class": NUM_CLASS, "graph": "mypkg.graphs.Chain", "width": 8},
                         mmcl={"helpers": {"calm": {"type": "mypkg.helpers.Calm", "weight": 0.5, "scale": 2.0}}})
    assert main_mmcl.main(["--config", str(config)]) == 0
    work = tmp_path / "run"
    log = (work / "log.txt").read_text()
    assert "objective: CE + 0.2·CE(S_R) [FRM off] + 0.1·L_c [FAM off, τ=0.4] + 0.5·calm [Calm]" in log
    history = json.loads((work / "history.json").read_text())
    assert all(record["loss"] == pytest.approx(record["loss_ce"] + record["loss_calm"]) for record in history)
    state = torch.load(work / "last.pt", weights_only=True)["model"]
    assert "calm.bias" in state and not state["calm.bias"].eq(0).all()  # the helper trained
    assert main_mmcl.main(["--config", str(config), "--phase", "test", "--weights", str(work / "last.pt")]) == 0


def _attribute_config(make_config, tmp_path, dataset_dir, **helper):
    names = (dataset_dir / "train_names.txt").read_text().split()
    values = ["cup" if i % 3 else "empty" for i in range(len(names))]  # not the label: i % 3 is the class
    write_attribute_store(tmp_path / "held", values[::-1], names, "held")
    spec = {"type": "attribute_head", "weight": 0.5, "inputs": {"attribute": str(tmp_path / "held")}, **helper}
    return resolve_config(["--config", str(make_config(tmp_path, mmcl={"helpers": {"held": spec}}))])


def test_the_positive_control_is_cross_entropy_of_a_linear_head_on_f_g(make_config, tmp_path, dataset_dir):
    config = _attribute_config(make_config, tmp_path, dataset_dir)
    train_set = build_dataset(config, "train")
    objective, train_set, notes = build_objective(config, build_model(config, None), train_set)
    assert any(note.startswith("held.attribute: attribute feature store") for note in notes)
    data, label, _, *extras = next(iter(train_loader(train_set, config, Runtime(torch.device("cpu")), 0)))
    objective.eval()
    _, losses = objective(data.float(), label.long(), *extras)
    assert set(losses) == {"loss_ce", "loss_held"}
    _, feature = objective.backbone.forward_features(data.float())
    target = extras[2][:, 0].long()
    expected = 0.5 * F.cross_entropy(objective.held.head(feature), target)
    torch.testing.assert_close(losses["loss_held"], expected, rtol=0, atol=0)
    store = FeatureStore(tmp_path / "held", "attribute")
    rows = store.rows_for([train_set.sample_name[i] for i in range(len(train_set))])
    assert store.meta["classes"] == ["cup", "empty"] and set(store.features[rows, 0]) == {0.0, 1.0}


@pytest.mark.parametrize("helpers, expected", [
    ({"fam": {"type": "attribute_head"}}, "mmcl.helpers.fam: a helper's name must be a Python identifier other"),
    ({"x": {"weight": 1}}, "mmcl.helpers.x: expected a mapping with a 'type'"),
    ({"x": {"type": "nosuch"}}, "mmcl.helpers.x.type: unknown name 'nosuch'; registered: fam, frm, attribute_head"),
    ({"x": {"type": "nopkg.Helper"}}, "mmcl.helpers.x.type: cannot import 'nopkg'"),
    ({"x": {"type": "engine.errors.InputError"}}, "is not a model.helpers.CoLearningHelper subclass"),
    ({"x": {"type": "attribute_head"}}, "AttributeHead reads input 'attribute': give its store folder"),
    ({"x": {"type": "attribute_head", "inputs": {"colour": "/a"}}}, "AttributeHead reads no input 'colour'"),
    ({"x": {"type": "attribute_head", "weight": "high"}}, "mmcl.helpers.x.weight: expected a number"),
    ({"x": {"type": "frm"}}, "a text input is read (mmcl.frm or a helper) but mmcl.text_features is not set"),
])
def test_helper_mistakes_are_one_line(make_config, tmp_path, capsys, helpers, expected):
    config = make_config(tmp_path, mmcl={"helpers": helpers})
    assert main_mmcl.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "run").exists()


def test_an_unknown_helper_argument_is_one_line(make_config, tmp_path, dataset_dir):
    config = _attribute_config(make_config, tmp_path, dataset_dir, hidden=3)
    with pytest.raises(InputError, match="helpers.held: unknown argument 'hidden' for AttributeHead; accepted: none"):
        build_objective(config, build_model(config, None), build_dataset(config, "train"))


def test_attribute_stores_are_checked_against_the_split(tmp_path, dataset_dir):
    names = (dataset_dir / "train_names.txt").read_text().split()
    write_attribute_store(tmp_path / "few", ["a", "b"], names[:2], "held")
    with pytest.raises(InputError, match=f"22 of {len(names)} samples have no features"):
        FeatureStore(tmp_path / "few", "attribute").check(names)
    for features, problem in ((np.full((len(names), 1), 2.0), "class id in \\[0, 2\\)"),
                              (np.full((len(names), 1), 0.5), "class id in \\[0, 2\\)")):
        write_feature_store(tmp_path / "bad", features.astype(np.float32), names,
                            {"kind": "attribute", "classes": ["a", "b"]})
        with pytest.raises(InputError, match=problem):
            FeatureStore(tmp_path / "bad", None).check(names)
    with pytest.raises(InputError, match="needs at least two distinct classes"):
        write_attribute_store(tmp_path / "one", ["a"] * len(names), names, "held")


def test_make_attribute_store_from_records(tmp_path, capsys):
    records = tmp_path / "train.jsonl"
    rows = [{"name": "s1", "held": "cup"}, {"name": "s2", "held": None}, {"name": "s3", "held": "phone"}]
    records.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "held"
    assert make_attribute_store.main(["--records", str(records), "--key", "held", "--out", str(out)]) == 0
    store = FeatureStore(out, "attribute")
    assert store.meta["classes"] == ["cup", "none", "phone"] and store.features[:, 0].tolist() == [0, 1, 2]
    assert make_attribute_store.main(["--records", str(records), "--key", "held", "--out", str(out)]) == 2
    assert "already holds a store: pass --overwrite" in capsys.readouterr().err
    records.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[0]) + "\n")
    assert make_attribute_store.main(["--records", str(records), "--key", "held", "--out", str(out),
                                      "--overwrite"]) == 2
    assert f"{records}:2: sample 's1' appears twice" in capsys.readouterr().err


def test_the_helper_of_the_docs_trains(tmp_path, monkeypatch, make_config, dataset_dir):
    """docs/helpers.md's complete helper, its config entry, trained for real."""
    text = (ROOT / "docs" / "helpers.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    entry = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))["mmcl"]["helpers"]["hint"]
    assert entry == {"type": "mypkg.helpers.RGBHint", "weight": 0.5, "hidden": 128}
    assert len(code.strip().splitlines()) < 50
    package = tmp_path / "site" / "docpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    names = (dataset_dir / "train_names.txt").read_text().split()
    features = np.random.default_rng(0).standard_normal((len(names), 6)).astype(np.float32)
    write_feature_store(tmp_path / "rgb", features, names, {"kind": "rgb"})
    helper = {**entry, "type": "docpkg.helpers.RGBHint", "hidden": 16}
    config = make_config(tmp_path, num_epoch=1,
                         mmcl={"rgb_features": str(tmp_path / "rgb"), "helpers": {"hint": helper}})
    assert main_mmcl.main(["--config", str(config)]) == 0
    record = json.loads((tmp_path / "run" / "history.json").read_text())[0]
    assert 0 < record["loss_hint"] <= 0.5 * 2  # the weight times 1 - cosine
    assert record["loss"] == pytest.approx(record["loss_ce"] + record["loss_hint"])


@pytest.mark.parametrize("kind, args", [("rgb_distill", {"temperature": 2.0}), ("fam_projected", {}),
                                        ("fam_class_positives", {"temperature": 0.5}),
                                        ("rgb_clusters", {"clusters": 3})])
def test_the_helpers_beyond_the_paper_train_from_a_config(kind, args, make_config, tmp_path, dataset_dir):
    names = (dataset_dir / "train_names.txt").read_text().split()
    features = np.random.default_rng(0).standard_normal((len(names), 6)).astype(np.float32)
    write_feature_store(tmp_path / "rgb", features, names, {"kind": "rgb"})
    helper = {"type": kind, "weight": 0.3, **args}
    config = resolve_config(["--config", str(make_config(tmp_path, mmcl={"rgb_features": str(tmp_path / "rgb"),
                                                                          "helpers": {"extra": helper}}))])
    train_set = build_dataset(config, "train")
    objective, train_set, notes = build_objective(config, build_model(config, None), train_set)
    assert notes[-1].endswith(f"0.3·extra [{type(objective.extra).__name__}]")
    data, label, _, *extras = next(iter(train_loader(train_set, config, Runtime(torch.device("cpu")), 0)))
    _, losses = objective(data.float(), label.long(), *extras)
    assert set(losses) == {"loss_ce", "loss_extra"} and torch.isfinite(losses["loss_extra"])
    sum(losses.values()).backward()
    trainable = [p for p in objective.extra.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in trainable)
