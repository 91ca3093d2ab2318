"""Pseudo-attributes found in another modality: F_g predicts which cluster of text (or RGB) features a sample
falls in.

The positive control (``model.attribute_head``) needs the attribute itself. Here the attribute is found in the
features of one modality alone: before training, k-means (scikit-learn) groups the L2-normalised rows of the
training split's ``text`` (or ``rgb``) store into ``clusters`` groups and keeps their centres. In each step a
sample's target is its nearest centre (cosine similarity), and a linear head on F_g learns it with
cross-entropy::

    c_i = argmax_k cos(t_i, μ_k),    L = CE(W · F_g + b, c_i)

What the answers of a multimodal LLM tell apart (the object in the hand, a second person) becomes something
F_g has to tell, also where the label does not. Unlike FAM, it asks F_g for the few distinctions that the
modality makes, not for a copy of its whole feature; unlike FRM, the target does not depend on the label.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from torch import nn

from engine.errors import InputError
from model.helpers import CoLearningHelper, HelperContext, StepState
from model.precision import full_precision


def cluster_centres(features: np.ndarray, clusters: int, seed: int = 0) -> np.ndarray:
    """(clusters, D) unit-length k-means centres of the L2-normalised rows of ``features``."""
    rows = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    distinct = len(np.unique(rows.round(6), axis=0))
    if distinct < clusters:
        raise InputError(f"{clusters} clusters asked of features with {distinct} distinct rows; ask for at most "
                         f"{distinct}")
    centres = KMeans(n_clusters=clusters, n_init=10, random_state=seed).fit(rows).cluster_centers_
    return (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)


class FeatureClusterHead(CoLearningHelper):
    """``Linear(F_g) → clusters`` of the training rows of the store it reads (its one ``inputs``, set by the
    subclasses); its loss is ``loss_<name>``."""

    def __init__(self, context: HelperContext, clusters: int = 8, seed: int = 0) -> None:
        super().__init__()
        source = self.inputs[0]
        if context.training_split is None:
            raise InputError(f"mmcl.helpers.{context.name}: the clusters are fitted on cached {source} features "
                             f"(mmcl.{source}_features), not on inputs encoded in the loop")
        if not isinstance(clusters, int) or clusters < 2:
            raise InputError(f"mmcl.helpers.{context.name}.clusters: expected an integer >= 2, got {clusters!r}")
        features, _ = context.training_split(source)
        try:
            centres = cluster_centres(features, clusters, seed)
        except InputError as error:
            raise InputError(f"mmcl.helpers.{context.name}: {error}") from None
        self.register_buffer("centres", torch.from_numpy(centres))
        self.head = nn.Linear(context.feature_dim, clusters)
        self.loss_name = f"loss_{context.name}"

    def targets(self, features: torch.Tensor) -> torch.Tensor:
        """The nearest centre (cosine) of each row of ``features`` (N, D)."""
        with full_precision(features):
            return (F.normalize(features.float(), dim=1) @ self.centres.t()).argmax(dim=1)

    def losses(self, step: StepState, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        target = self.targets(inputs[self.inputs[0]])
        return {self.loss_name: F.cross_entropy(self.head(step.feature.float()), target)}


class TextClusterHead(FeatureClusterHead):
    """Clusters of the ``text`` store (``text_clusters``)."""

    inputs = ("text",)


class RGBClusterHead(FeatureClusterHead):
    """Clusters of the ``rgb`` store (``rgb_clusters``)."""

    inputs = ("rgb",)
