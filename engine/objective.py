"""What a training step optimises: a module mapping a batch to logits and a dict of named, weighted losses.

Losses are computed inside ``forward`` so that DataParallel splits them with the batch, as the public
MMCL run did. :func:`build_objective` returns the plain cross-entropy objective (the CTR-GCN baseline) or
the MMCL one (model/mmcl.py) with its co-learning helpers (FAM and FRM by their keys, others from
``mmcl.helpers``), with the training dataset wrapped to deliver the per-sample inputs they read.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from engine.errors import InputError
from feeders.feature_store import COMBINE, FeatureStore, open_feature_stores
from feeders.multimodal import MultimodalDataset
from model.helper_registry import build_helper, helper_class
from model.helpers import CoLearningHelper, HelperContext
from model.mmcl import RESERVED, MMCLObjective
from model.rgb_encoder import FrozenClipImageEncoder, build_rgb_encoder

#: The ``mmcl`` section of a config: which helpers train with the backbone, their weights and inputs.
MMCL_DEFAULTS: dict[str, Any] = {
    "fam": False,                # feature alignment with RGB (docs/method.md §3)
    "frm": False,                # feature refinement with text (docs/method.md §4)
    "lambda_refine": 0.2,        # weight of CE(S_R, y)
    "lambda_align": 0.1,         # weight of L_c
    "temperature": 0.4,          # τ of L_c
    "gather_negatives": False,   # L_c negatives from every rank (DDP) instead of this replica's batch
    "rgb_features": None,        # RGB feature store folder (cached mode, the fast path)
    "rgb_images": None,          # folder of <name>.jpg strips (online mode: the encoder runs in the loop)
    "rgb_encoder": {"type": "open_clip", "model_name": "ViT-B-32", "pretrained": "openai"},
    "text_features": None,       # text feature store folder, or a list of them (e.g. one per prompt)
    "text_combine": "concat",    # several text stores: concat (widths add) or mean (same width)
    "helpers": {},               # further helpers: name -> {type, weight, inputs, arguments} (docs/helpers.md)
}


def mmcl_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The config's ``mmcl`` section over the defaults; unknown keys are an error naming them."""
    section = config.get("mmcl") or {}
    unknown = [key for key in section if key not in MMCL_DEFAULTS]
    if unknown:
        raise InputError(f"unknown config key 'mmcl.{unknown[0]}'")
    settings = {**MMCL_DEFAULTS, **section}
    if settings["fam"] and not (settings["rgb_features"] or settings["rgb_images"]):
        raise InputError("mmcl.fam is on but neither mmcl.rgb_features nor mmcl.rgb_images is set")
    if settings["rgb_features"] and settings["rgb_images"]:
        raise InputError("mmcl.rgb_features and mmcl.rgb_images are both set: choose cached or online RGB")
    if settings["frm"] and not settings["text_features"]:
        raise InputError("mmcl.frm is on but mmcl.text_features is not set")
    text = settings["text_features"]
    if text is not None and not (isinstance(text, str) or isinstance(text, list) and all(isinstance(t, str) for t in text)):
        raise InputError(f"mmcl.text_features: expected a store folder or a list of them, got {text!r}")
    if settings["text_combine"] not in COMBINE:
        raise InputError(f"mmcl.text_combine: expected one of {', '.join(COMBINE)}, got {settings['text_combine']!r}")
    return settings


class ClassificationObjective(nn.Module):
    """A skeleton backbone trained with cross-entropy on its logits (the CTR-GCN baseline)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def prepare_inputs(self, extras: list[torch.Tensor]) -> list[torch.Tensor]:
        return extras

    def forward(self, data: torch.Tensor, label: torch.Tensor, *extras: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = self.backbone(data)
        return logits, {"loss_ce": F.cross_entropy(logits.float(), label)}


def helper_specs(settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``mmcl.helpers`` entries (name: {type, weight, inputs, constructor arguments...}), checked."""
    helpers = settings["helpers"] or {}
    if not isinstance(helpers, dict):
        raise InputError(f"mmcl.helpers: expected a mapping of helper names to their settings, got {helpers!r}")
    for name, spec in helpers.items():
        key = f"mmcl.helpers.{name}"
        if not isinstance(name, str) or not name.isidentifier() or name in (*RESERVED, "fam", "frm"):
            raise InputError(f"{key}: a helper's name must be a Python identifier other than "
                             f"{', '.join((*RESERVED, 'fam', 'frm'))}")
        if not isinstance(spec, dict) or "type" not in spec:
            raise InputError(f"{key}: expected a mapping with a 'type' (a registered helper or a dotted path)")
        weight = spec.get("weight", 1.0)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool):
            raise InputError(f"{key}.weight: expected a number, got {weight!r}")
        inputs = spec.get("inputs", {})
        if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
            raise InputError(f"{key}.inputs: expected a mapping of input names to store folders, got {inputs!r}")
    return helpers


class _Inputs:
    """The per-sample inputs of a run: the RGB and text sources (opened when a helper reads them) and further
    named stores, each checked against the training split once."""

    def __init__(self, settings: dict[str, Any], train_set: Dataset) -> None:
        self.settings, self.names, self.notes = settings, list(train_set.sample_name), []
        self.labels = np.asarray(train_set.label)
        self.rgb_store = self.text_store = self.encoder = None
        self.stores: dict[str, FeatureStore] = {}

    def rgb(self) -> int:
        """Open the RGB source (store or online encoder) once; its width."""
        if self.rgb_store is None and self.encoder is None:
            settings = self.settings
            if settings["rgb_features"]:
                self.rgb_store = FeatureStore(settings["rgb_features"], "rgb")
                self.notes += [f"RGB: cached features {self.rgb_store.root} ({self.rgb_store.dim}-d)",
                               self.rgb_store.check(self.names)]
            elif settings["rgb_images"]:
                self.encoder = build_rgb_encoder(settings["rgb_encoder"])
                self.notes.append(f"RGB: strips {settings['rgb_images']} through {self.encoder.spec} "
                                  f"({self.encoder.output_dim}-d)")
            else:
                raise InputError("an RGB input is read (mmcl.fam or a helper) but neither mmcl.rgb_features nor "
                                 "mmcl.rgb_images is set")
        return self.rgb_store.dim if self.rgb_store is not None else self.encoder.output_dim

    def text(self) -> int:
        """Open the text store(s) once; their width."""
        if self.text_store is None:
            if not self.settings["text_features"]:
                raise InputError("a text input is read (mmcl.frm or a helper) but mmcl.text_features is not set")
            self.text_store = open_feature_stores(self.settings["text_features"], "text",
                                                  self.settings["text_combine"])
            self.notes += [f"text: features {self.text_store.root} ({self.text_store.dim}-d)",
                           self.text_store.check(self.names)]
        return self.text_store.dim

    def store(self, source: str, folder: str) -> FeatureStore:
        """Open the store ``folder`` as input ``source`` (``<helper>.<input>``)."""
        store = FeatureStore(folder, None)
        self.notes.append(f"{source}: {store.check(self.names)}")
        self.stores[source] = store
        return store

    def training_split(self, source: str) -> tuple[np.ndarray, np.ndarray]:
        """Every training sample's row of input ``source`` (float32) and its label."""
        store = {"rgb": self.rgb_store, "text": self.text_store}.get(source) or self.stores.get(source)
        if store is None:
            raise InputError(f"input {source!r}: strips encoded in the loop have no rows to fit on; use cached "
                             "features (mmcl.rgb_features)")
        return store.gather(store.rows_for(self.names)), self.labels

    def dataset(self, train_set: Dataset) -> MultimodalDataset:
        online = self.encoder is not None
        return MultimodalDataset(train_set, rgb_store=self.rgb_store,
                                 rgb_images=self.settings["rgb_images"] if online else None,
                                 rgb_preprocess=self.encoder.preprocess if online else None,
                                 text_store=self.text_store, stores=self.stores)


def build_helpers(specs: dict[str, dict[str, Any]], inputs: _Inputs, num_class: int, feature_dim: int
                  ) -> tuple[dict[str, tuple[CoLearningHelper, float]], dict[str, dict[str, str]]]:
    """The configured helpers with their weights, and where each reads its declared inputs."""
    helpers, sources = {}, {}
    for name, spec in specs.items():
        key = f"mmcl.helpers.{name}"
        cls = helper_class(spec["type"], f"{key}.type")
        given = dict(spec.get("inputs", {}))
        extra = [input_name for input_name in given if input_name not in cls.inputs]
        if extra:
            raise InputError(f"{key}.inputs: {cls.__name__} reads no input {extra[0]!r} (it reads: "
                             f"{', '.join(cls.inputs) or 'none'})")
        dims, meta, sources[name] = {}, {}, {}
        for declared in cls.inputs:
            if declared in given:
                source = f"{name}.{declared}"
                store = inputs.store(source, given[declared])
                dims[declared], meta[declared] = store.dim, store.meta
            elif declared in ("rgb", "text"):
                source = declared
                dims[declared] = inputs.rgb() if declared == "rgb" else inputs.text()
            else:
                raise InputError(f"{key}: {cls.__name__} reads input {declared!r}: give its store folder as "
                                 f"inputs: {{{declared}: <folder>}}")
            sources[name][declared] = source
        context = HelperContext(name, num_class, feature_dim, dims, meta,
                                lambda declared, own=sources[name]: inputs.training_split(own[declared]))
        args = {k: v for k, v in spec.items() if k not in ("type", "weight", "inputs")}
        helpers[name] = (build_helper(cls, context, args), float(spec.get("weight", 1.0)))
    return helpers, sources


def build_objective(config: dict[str, Any], backbone: nn.Module, train_set: Dataset
                    ) -> tuple[nn.Module, Dataset, list[str]]:
    """The training objective, the training dataset it reads and log lines describing the set-up."""
    settings = mmcl_settings(config)
    specs = helper_specs(settings)
    if not (settings["fam"] or settings["frm"] or specs):
        return ClassificationObjective(backbone), train_set, ["objective: cross-entropy (no co-learning helper)"]

    inputs = _Inputs(settings, train_set)
    num_class, feature_dim = backbone.fc.out_features, backbone.fc.in_features
    rgb_dim = inputs.rgb() if settings["fam"] else None
    text_dim = inputs.text() if settings["frm"] else None
    helpers, sources = build_helpers(specs, inputs, num_class, feature_dim)
    encoder = inputs.encoder
    frozen = isinstance(encoder, FrozenClipImageEncoder)
    objective = MMCLObjective(
        backbone, num_class=num_class, feature_dim=feature_dim, rgb_dim=rgb_dim, text_dim=text_dim,
        lambda_refine=settings["lambda_refine"], lambda_align=settings["lambda_align"],
        temperature=settings["temperature"], gather_negatives=settings["gather_negatives"],
        trainable_rgb_encoder=None if frozen else encoder, frozen_rgb_encoder=encoder if frozen else None,
        helpers=helpers, sources=sources, input_names=("rgb", "text", *inputs.stores))
    terms = [f"{settings['lambda_refine']}·CE(S_R) [FRM {'on' if text_dim else 'off'}]",
             f"{settings['lambda_align']}·L_c [FAM {'on' if rgb_dim else 'off'}, τ={settings['temperature']}]",
             *(f"{weight}·{name} [{type(helper).__name__}]" for name, (helper, weight) in helpers.items())]
    return objective, inputs.dataset(train_set), [*inputs.notes, "objective: CE + " + " + ".join(terms)]
