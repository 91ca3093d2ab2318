"""What a training step optimises: a module mapping a batch to logits and a dict of named, weighted losses.

Losses are computed inside ``forward`` so that DataParallel splits them with the batch, as the public
MMCL run did. :func:`build_objective` returns the plain cross-entropy objective (the CTR-GCN baseline) or
the MMCL one (model/mmcl.py), with the training dataset wrapped to deliver RGB and text inputs.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from engine.errors import InputError
from feeders.feature_store import COMBINE, FeatureStore, open_feature_stores
from feeders.multimodal import MultimodalDataset
from model.mmcl import MMCLObjective
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
    if settings["fam"] and settings["rgb_features"] and settings["rgb_images"]:
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


def build_objective(config: dict[str, Any], backbone: nn.Module, train_set: Dataset
                    ) -> tuple[nn.Module, Dataset, list[str]]:
    """The training objective, the training dataset it reads and log lines describing the set-up."""
    settings = mmcl_settings(config)
    if not (settings["fam"] or settings["frm"]):
        return ClassificationObjective(backbone), train_set, ["objective: cross-entropy (no FAM / FRM)"]

    notes = []
    rgb_store = text_store = encoder = None
    rgb_dim = text_dim = None
    if settings["fam"]:
        if settings["rgb_features"]:
            rgb_store = FeatureStore(settings["rgb_features"], "rgb")
            rgb_dim = rgb_store.dim
            notes.append(f"FAM: cached RGB features {rgb_store.root} ({rgb_dim}-d)")
            notes.append(rgb_store.check(train_set.sample_name))
        else:
            encoder = build_rgb_encoder(settings["rgb_encoder"])
            rgb_dim = encoder.output_dim
            notes.append(f"FAM: RGB strips {settings['rgb_images']} through {encoder.spec} ({rgb_dim}-d)")
    if settings["frm"]:
        text_store = open_feature_stores(settings["text_features"], "text", settings["text_combine"])
        text_dim = text_store.dim
        notes.append(f"FRM: text features {text_store.root} ({text_dim}-d)")
        notes.append(text_store.check(train_set.sample_name))
    dataset = MultimodalDataset(train_set, rgb_store=rgb_store, rgb_images=settings["rgb_images"] if encoder else None,
                                rgb_preprocess=encoder.preprocess if encoder else None, text_store=text_store)
    frozen = isinstance(encoder, FrozenClipImageEncoder)
    objective = MMCLObjective(
        backbone, num_class=backbone.fc.out_features, feature_dim=backbone.fc.in_features, rgb_dim=rgb_dim,
        text_dim=text_dim, lambda_refine=settings["lambda_refine"], lambda_align=settings["lambda_align"],
        temperature=settings["temperature"], gather_negatives=settings["gather_negatives"],
        trainable_rgb_encoder=None if frozen else encoder, frozen_rgb_encoder=encoder if frozen else None)
    notes.append(f"objective: CE + {settings['lambda_refine']}·CE(S_R) [FRM {'on' if text_dim else 'off'}] + "
                 f"{settings['lambda_align']}·L_c [FAM {'on' if rgb_dim else 'off'}, τ={settings['temperature']}]")
    return objective, dataset, notes
