"""The helpers beyond the paper against their formulas, written out with Python loops or another library:
the class-aware contrastive loss, FAM with a skeleton projection head, distillation from a linear RGB
teacher, and the head predicting clusters of text features."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.errors import InputError
from model.alignment_variants import ProjectedAlignment, class_aware_loss
from model.cluster_head import RGBClusterHead, TextClusterHead
from model.fam import contrastive_alignment_loss
from model.helpers import HelperContext, StepState
from model.rgb_distill import RGBTeacherDistillation, fit_linear_teacher


def _class_aware_oracle(a: torch.Tensor, b: torch.Tensor, labels: list[int], tau: float) -> float:
    """The loss of model/alignment_variants.py's docstring, term by term."""
    def cos(x, y):
        return float(torch.dot(x, y) / (x.norm() * y.norm()))

    def ell(p, q, i):
        candidates = [(q[k], labels[k]) for k in range(len(p))] + [(p[k], labels[k]) for k in range(len(p)) if k != i]
        denominator = sum(math.exp(cos(p[i], c) / tau) for c, _ in candidates)
        positives = [math.log(math.exp(cos(p[i], c) / tau) / denominator) for c, y in candidates if y == labels[i]]
        return -sum(positives) / len(positives)

    n = len(a)
    return sum(ell(a, b, i) + ell(b, a, i) for i in range(n)) / (2 * n)


def test_class_aware_loss_matches_its_formula_and_is_fam_s_with_one_sample_a_class():
    torch.manual_seed(0)
    a, b = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    labels = [0, 1, 0, 2, 1, 0]
    got = class_aware_loss(a, b, torch.tensor(labels), temperature=0.4)
    assert float(got) == pytest.approx(_class_aware_oracle(a, b, labels, 0.4), rel=1e-6)
    distinct = torch.arange(6)
    torch.testing.assert_close(class_aware_loss(a, b, distinct), contrastive_alignment_loss(a, b))


def test_projected_alignment_aligns_a_projection_of_f_g():
    torch.manual_seed(0)
    helper = ProjectedAlignment(rgb_dim=7, feature_dim=4, temperature=0.3, name="proj")
    feature, rgb = torch.randn(5, 4), torch.randn(5, 7)
    step = StepState(torch.randn(5, 3), feature, torch.arange(5))
    expected = contrastive_alignment_loss(helper.skeleton_head(feature), helper.mlp(rgb), 0.3)
    torch.testing.assert_close(helper.losses(step, {"rgb": rgb})["loss_proj"], expected)


def _separable(rng: np.random.Generator, n: int = 60, num_class: int = 3) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(n) % num_class
    return (rng.standard_normal((n, 4)) + 2 * np.eye(num_class, 4)[labels] + 5).astype(np.float32), labels


def test_the_rgb_teacher_is_scikit_learn_s_classifier_and_distils_with_t_squared_kl():
    features, labels = _separable(np.random.default_rng(0))
    weight, bias = fit_linear_teacher(features, labels, 3)
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(features, labels)
    probabilities = torch.softmax(torch.from_numpy(features @ weight.T + bias), dim=1).numpy()
    np.testing.assert_allclose(probabilities, reference.predict_proba(features), atol=1e-5)
    context = HelperContext("distill", 3, 8, {"rgb": 4}, {}, lambda source: (features, labels))
    helper = RGBTeacherDistillation(context, temperature=2.0)
    rgb, logits = torch.from_numpy(features[:5]), torch.randn(5, 3)
    loss = helper.losses(StepState(logits, torch.zeros(5, 8), torch.zeros(5)), {"rgb": rgb})["loss_distill"]
    teacher = torch.softmax(helper.teacher(rgb) / 2, dim=1)
    by_hand = sum(float((teacher[i] * (teacher[i].log() - torch.log_softmax(logits[i] / 2, 0))).sum())
                  for i in range(5)) / 5
    assert float(loss) == pytest.approx(4 * by_hand, rel=1e-5)
    same = helper.losses(StepState(helper.teacher(rgb), torch.zeros(5, 8), torch.zeros(5)), {"rgb": rgb})
    assert float(same["loss_distill"]) == pytest.approx(0, abs=1e-6)  # the teacher's own scores: nothing to learn
    with pytest.raises(InputError, match="class 2 has no sample"):
        fit_linear_teacher(features[labels < 2], labels[labels < 2], 3)


def test_the_cluster_head_learns_the_nearest_k_means_centre_of_the_text():
    rng = np.random.default_rng(0)
    groups = np.arange(60) % 3  # three kinds of answer, each a direction plus a little noise, at any length
    directions = np.eye(3, 6) + 0.2
    text = (directions[groups] + 0.02 * rng.standard_normal((60, 6))) * rng.uniform(0.5, 3, (60, 1))
    context = HelperContext("clusters", 4, 8, {"text": 6}, {}, lambda source: (text.astype(np.float32), groups))
    helper = TextClusterHead(context, clusters=3)
    targets = helper.targets(torch.from_numpy(text)).numpy()
    assert len(set(zip(targets, groups))) == 3  # the clusters are the three kinds, in some order
    by_hand = [int(np.argmax([np.dot(row, c) / np.linalg.norm(row) for c in helper.centres.numpy()])) for row in text]
    assert targets.tolist() == by_hand
    feature, rows = torch.randn(5, 8), torch.from_numpy(text[:5]).float()
    loss = helper.losses(StepState(torch.zeros(5, 4), feature, torch.zeros(5)), {"text": rows})["loss_clusters"]
    scores = helper.head(feature).detach()
    expected = -sum(float(torch.log_softmax(scores[i], 0)[targets[i]]) for i in range(5)) / 5
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    assert RGBClusterHead.inputs == ("rgb",) and TextClusterHead.inputs == ("text",)
    with pytest.raises(InputError, match="clusters: 4 clusters asked of features with 3 distinct rows"):
        TextClusterHead(HelperContext("clusters", 4, 8, {"text": 6}, {},
                                         lambda source: (np.repeat(np.eye(3, 6), 5, axis=0), groups[:15])), 4)
