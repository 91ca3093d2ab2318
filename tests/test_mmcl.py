"""MMCL's training-only modules: FRM, FAM and its loss, the objective, encoders, stores, public key map."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from engine.errors import InputError
from engine.objective import MMCL_DEFAULTS
from feeders.feature_store import FeatureStore, write_feature_store
from feeders.multimodal import MultimodalDataset, read_strip
from llm_features import extract_rgb_features
from model.ctrgcn import Model
from model.fam import contrastive_alignment_loss
from model.frm import FeatureRefinement
from model.mmcl import MMCLObjective
from model.public_mmcl import map_public_state, public_key_to_ours
from model.rgb_encoder import FrozenClipImageEncoder, InceptionV3Encoder, build_rgb_encoder, split_panels


def _backbone(num_class: int = 5) -> Model:
    return Model(num_class=num_class, num_point=25, num_person=2, graph="graph.ntu_rgb_d.Graph", base_channel=8)


def _spec_loss(a: torch.Tensor, b: torch.Tensor, tau: float) -> float:
    """docs/method.md §3 written out term by term with Python loops (the oracle)."""
    def cos(x, y):
        return float(torch.dot(x, y) / (x.norm() * y.norm()))

    def ell(p, q, i):
        positive = math.exp(cos(p[i], q[i]) / tau)
        negatives = sum(math.exp(cos(p[i], q[k]) / tau) + math.exp(cos(p[i], p[k]) / tau)
                        for k in range(len(p)) if k != i)
        return -math.log(positive / (positive + negatives))

    n = len(a)
    return sum(ell(a, b, i) + ell(b, a, i) for i in range(n)) / (2 * n)


def test_refined_scores_equal_scores_at_init():
    frm = FeatureRefinement(text_dim=7, num_class=5)
    logits = torch.randn(4, 5)
    assert torch.equal(frm(logits, torch.randn(4, 7)), logits)


def test_refinement_matches_the_formula_after_training_moves_the_scales():
    frm = FeatureRefinement(text_dim=3, num_class=4)
    with torch.no_grad():
        frm.pos.uniform_(0.5, 2)
        frm.neg.uniform_(0.5, 2)
    logits, text = torch.randn(6, 4), torch.randn(6, 3)
    w = torch.softmax(frm.phi(text), dim=1)
    expected = logits * (w[:, :1] * frm.pos + w[:, 1:] * frm.neg)
    torch.testing.assert_close(frm(logits, text), expected)


def test_contrastive_loss_is_log_2n_minus_1_for_orthogonal_features():
    n = 6
    basis = torch.eye(2 * n)
    loss = contrastive_alignment_loss(basis[:n], basis[n:], temperature=0.4)
    assert abs(loss.item() - math.log(2 * n - 1)) < 1e-6
    random = contrastive_alignment_loss(torch.randn(n, 8192), torch.randn(n, 8192))
    assert abs(random.item() - math.log(2 * n - 1)) < 0.05


@pytest.mark.parametrize("tau", [0.4, 0.1])
def test_contrastive_loss_matches_the_formula(tau):
    torch.manual_seed(0)
    a, b = torch.randn(5, 6), torch.randn(5, 6)
    assert contrastive_alignment_loss(a, b, tau).item() == pytest.approx(_spec_loss(a, b, tau), rel=1e-5)


def test_aligned_pairs_give_a_lower_loss():
    torch.manual_seed(0)
    a = torch.randn(8, 16)
    assert contrastive_alignment_loss(a, a + 0.01 * torch.randn(8, 16)) < contrastive_alignment_loss(a, torch.randn(8, 16))


def _gathered_loss_worker(rank: int, world: int, port: int, a: torch.Tensor, b: torch.Tensor, out) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    n = len(a) // world
    local_a = a[rank * n:(rank + 1) * n].clone().requires_grad_(True)
    loss = contrastive_alignment_loss(local_a, b[rank * n:(rank + 1) * n], gather_negatives=True)
    loss.backward()
    out[rank] = torch.cat([loss.detach().reshape(1), local_a.grad.flatten()])
    dist.barrier()
    dist.destroy_process_group()


def test_gathered_negatives_equal_the_loss_of_the_whole_batch():
    torch.manual_seed(0)
    a, b = torch.randn(6, 5), torch.randn(6, 5)
    whole_a = a.clone().requires_grad_(True)
    whole = contrastive_alignment_loss(whole_a, b)
    whole.backward()
    manager = mp.Manager()
    out = manager.dict()
    port = 29500 + os.getpid() % 1000
    mp.spawn(_gathered_loss_worker, args=(2, port, a, b, out), nprocs=2, join=True)
    mean_loss = (out[0][0] + out[1][0]) / 2
    assert mean_loss.item() == pytest.approx(whole.item(), rel=1e-5)
    # each rank's mean loss has 1/2 the weight of the whole-batch mean: gradients scale accordingly
    grads = torch.cat([out[0][1:].reshape(3, 5), out[1][1:].reshape(3, 5)]) / 2
    torch.testing.assert_close(grads, whole_a.grad, rtol=1e-4, atol=1e-6)


def _objective(rgb_dim=12, text_dim=6, **kwargs) -> MMCLObjective:
    backbone = _backbone()
    return MMCLObjective(backbone, num_class=5, feature_dim=backbone.fc.in_features, rgb_dim=rgb_dim,
                         text_dim=text_dim, **kwargs)


def test_objective_gradients_reach_every_trainable_part():
    torch.manual_seed(0)
    objective = _objective()
    with torch.no_grad():  # leave the initial point where some gradients vanish by construction:
        objective.frm.pos.add_(0.1 * torch.randn(5))  # Pos == Neg gives Φ no gradient
        for name, parameter in objective.named_parameters():
            if name.endswith("alpha"):  # α == 0 gives the topology convolutions none
                parameter.fill_(0.1)
    data = torch.randn(4, 3, 12, 25, 2)
    logits, losses = objective(data, torch.tensor([0, 1, 2, 3]), torch.randn(4, 12), torch.randn(4, 6))
    assert set(losses) == {"loss_ce", "loss_refine", "loss_align"}
    sum(losses.values()).backward()
    for name, parameter in objective.named_parameters():
        assert parameter.grad is not None, name
        if not name.endswith("conv.bias"):  # a conv bias right before BatchNorm has none by construction
            assert parameter.grad.abs().sum() > 0, name
    assert logits.shape == (4, 5)


def test_loss_weights_scale_the_terms():
    torch.manual_seed(0)
    args = (torch.randn(4, 3, 12, 25, 2), torch.tensor([0, 1, 2, 3]), torch.randn(4, 12), torch.randn(4, 6))
    torch.manual_seed(1)
    unit = _objective(lambda_refine=1.0, lambda_align=1.0).eval()
    torch.manual_seed(1)
    weighted = _objective(lambda_refine=0.2, lambda_align=0.1).eval()
    _, a = unit(*args)
    _, b = weighted(*args)
    assert b["loss_refine"].item() == pytest.approx(0.2 * a["loss_refine"].item(), rel=1e-5)
    assert b["loss_align"].item() == pytest.approx(0.1 * a["loss_align"].item(), rel=1e-5)
    assert b["loss_ce"].item() == pytest.approx(a["loss_ce"].item(), rel=1e-6)


def test_inference_path_is_the_plain_backbone():
    objective = _objective()
    plain = _backbone()
    assert sum(p.numel() for p in objective.backbone.parameters()) == sum(p.numel() for p in plain.parameters())
    exported = {k: v.clone() for k, v in objective.backbone.state_dict().items()}
    plain.load_state_dict(exported, strict=True)
    x = torch.randn(2, 3, 12, 25, 2)
    torch.testing.assert_close(plain.eval()(x), objective.backbone.eval()(x), rtol=0, atol=0)


@pytest.fixture(scope="module")
def tiny_clip() -> FrozenClipImageEncoder:
    return FrozenClipImageEncoder("ViT-S-32", pretrained=None, image_size=64, layout="strip")


def _strip(width=320, height=64, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))


def test_frozen_clip_encoder_is_frozen_and_never_saved(tiny_clip):
    images = torch.stack([tiny_clip.preprocess(_strip(seed=i)) for i in range(2)])
    assert images.shape == (2, 3, 64, 64)  # the whole strip squashed, nothing cropped away
    objective = _objective(rgb_dim=tiny_clip.output_dim, frozen_rgb_encoder=tiny_clip)
    tiny_clip.train()
    assert not tiny_clip.training and not any(p.requires_grad for p in tiny_clip.parameters())
    assert not any(k.startswith(("frozen", "visual")) for k in objective.state_dict())
    assert all(p is not q for p in objective.parameters() for q in tiny_clip.parameters())
    rgb, text = objective.prepare_inputs([images, torch.randn(2, 6)])
    assert rgb.shape == (2, tiny_clip.output_dim) and not rgb.requires_grad
    _, losses = objective(torch.randn(2, 3, 12, 25, 2), torch.tensor([0, 1]), rgb, text)
    sum(losses.values()).backward()
    assert all(p.grad is None for p in tiny_clip.parameters())


def test_panel_layout_encodes_each_panel_in_order():
    encoder = FrozenClipImageEncoder("ViT-S-32", pretrained=None, image_size=32, layout="panels", panels=5)
    strip = _strip(width=160, height=32)
    assert [p.size for p in split_panels(strip, 5)] == [(32, 32)] * 5
    features = encoder(encoder.preprocess(strip)[None])
    width = encoder.output_dim // 5
    assert features.shape == (1, 5 * width)
    one_by_one = torch.cat([encoder.visual(encoder.image_transform(panel)[None]) for panel in split_panels(strip, 5)], 1)
    torch.testing.assert_close(features, one_by_one)


def test_letterbox_layout_keeps_the_aspect_and_pads():
    encoder = FrozenClipImageEncoder("ViT-S-32", pretrained=None, image_size=32, layout="letterbox")
    black, white = (encoder.preprocess(Image.new("RGB", (32, 32), colour))[:, 0, 0] for colour in ("black", "white"))
    image = encoder.preprocess(Image.new("RGB", (160, 32), "white"))  # 5:1 -> 32 wide, 6-7 rows high, padded
    rows = image[:, :, 16].t()  # the centre column, top to bottom
    is_white, is_black = (torch.isclose(rows, value, atol=1e-5).all(1) for value in (white, black))
    assert image.shape == (3, 32, 32) and 6 <= int(is_white.sum()) <= 7 and bool((is_white | is_black).all())
    assert is_white[16] and is_black[0] and is_black[-1]
    assert encoder(image[None]).shape == (1, encoder.output_dim) and encoder.output_dim == encoder.visual.output_dim


def test_unknown_layout_is_an_input_error():
    with pytest.raises(InputError, match="expected one of panels, strip, letterbox, got 'tiles'"):
        FrozenClipImageEncoder("ViT-S-32", pretrained=None, image_size=32, layout="tiles")


def test_cached_features_equal_the_online_encoders_by_default(tmp_path):
    """``extract_rgb_features`` and ``mmcl.rgb_encoder`` with their default layouts give the same features, and the
    store's meta.json says which layout made them."""
    rng = np.random.default_rng(0)
    names = [f"S001C001P001R001A00{i}" for i in range(1, 4)]
    for name in names:
        Image.fromarray(rng.integers(0, 255, (48, 240, 3), dtype=np.uint8)).save(tmp_path / f"{name}.jpg")
    (tmp_path / "names.txt").write_text("".join(f"{name}\n" for name in names))
    common = ["--images", str(tmp_path), "--names", str(tmp_path / "names.txt"), "--model", "mmcl-demo-tiny",
              "--pretrained", "none", "--workers", "0"]
    assert extract_rgb_features.main([*common, "--out", str(tmp_path / "cached")]) == 0
    assert extract_rgb_features.main([*common, "--layout", "strip", "--out", str(tmp_path / "squashed")]) == 0

    torch.manual_seed(0)  # the extractor's --seed default: the same random tower
    online = build_rgb_encoder({**MMCL_DEFAULTS["rgb_encoder"], "model_name": "mmcl-demo-tiny", "pretrained": None})
    expected = online(torch.stack([read_strip(tmp_path / f"{name}.jpg", online.preprocess) for name in names]))
    cached, squashed = FeatureStore(tmp_path / "cached", "rgb"), FeatureStore(tmp_path / "squashed", "rgb")
    assert online.layout == cached.meta["encoder"]["layout"] == "panels" and cached.dim == 5 * squashed.dim
    torch.testing.assert_close(torch.from_numpy(np.array(cached.features)), expected)
    assert squashed.meta["encoder"]["layout"] == "strip" and squashed.dim == online.visual.output_dim


def test_trainable_inception_takes_a_training_step():
    with pytest.warns(UserWarning, match="random weights"):
        encoder = InceptionV3Encoder()
    images = torch.stack([encoder.preprocess(_strip(width=120, height=80, seed=i))[:, :, :299]
                          for i in range(2)])
    objective = _objective(rgb_dim=1000, trainable_rgb_encoder=encoder)
    optimizer = torch.optim.SGD(objective.parameters(), lr=0.01)
    before = encoder.net.fc.weight.detach().clone()
    _, losses = objective(torch.randn(2, 3, 12, 25, 2), torch.tensor([0, 1]), images, torch.randn(2, 6))
    sum(losses.values()).backward()
    optimizer.step()
    assert not torch.equal(before, encoder.net.fc.weight)
    assert any(k.startswith("rgb_encoder.net.") for k in objective.state_dict())


def test_inception_sees_its_input_as_torchvision_pretrained_inception(tmp_path):
    """Same weights and ImageNet-normalised images: the logits of the public ``inception_v3(pretrained=True)``."""
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    pretrained_style = inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
    torch.save(pretrained_style.state_dict(), tmp_path / "inception.pth")
    encoder = InceptionV3Encoder(str(tmp_path / "inception.pth"))
    images = torch.randn(2, 3, 299, 299)
    for net in (pretrained_style, encoder.net):  # training mode, as MMCL uses it; no dropout to compare
        net.dropout.p = 0.0
    with torch.no_grad():
        expected = pretrained_style(images).logits
        torch.testing.assert_close(encoder(images), expected)
        pretrained_style.transform_input = False
        assert not torch.allclose(pretrained_style(images).logits, expected, rtol=1e-2, atol=1e-2)


def test_feature_store_round_trip_and_validation(tmp_path):
    features = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float16)
    write_feature_store(tmp_path / "text", features, ["a", "b", "c", "d"], {"kind": "text"},
                        answers=[{"name": n, "answer": f"answer {n}"} for n in "abcd"])
    store = FeatureStore(tmp_path / "text", "text")
    assert store.dim == 3 and store.features.dtype == np.float16
    np.testing.assert_array_equal(store.rows_for(["c", "a"]), [2, 0])
    np.testing.assert_allclose(store.row(1), features[1].astype(np.float32))
    with pytest.raises(InputError, match=r"2 of 3 samples have no features, e\.g\. x, y"):
        store.rows_for(["a", "x", "y"])
    with pytest.raises(InputError, match="features are 3-d, expected 5"):
        store.check_dim(5)
    with pytest.raises(InputError, match="a text feature store was given as the rgb store"):
        FeatureStore(tmp_path / "text", "rgb")
    with pytest.raises(InputError, match="missing features.npy"):
        FeatureStore(tmp_path / "nothing", "rgb")


class _Skeletons(torch.utils.data.Dataset):
    sample_name = ("s0", "s1", "s2")
    label = np.array([0, 1, 2])

    def __len__(self):
        return 3

    def __getitem__(self, index):
        return np.full((3, 4, 25, 2), index, np.float32), int(self.label[index]), index


def test_multimodal_dataset_joins_by_name(tmp_path):
    write_feature_store(tmp_path / "rgb", np.arange(12, dtype=np.float32).reshape(4, 3), ["s2", "x", "s0", "s1"],
                        {"kind": "rgb"})
    dataset = MultimodalDataset(_Skeletons(), rgb_store=FeatureStore(tmp_path / "rgb", "rgb"))
    *_, rgb, text = dataset[0]
    np.testing.assert_array_equal(rgb, [6, 7, 8])
    assert text.shape == (0,) and dataset.sample_name == _Skeletons.sample_name
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=3)))
    assert batch[3].shape == (3, 3) and batch[4].shape == (3, 0)
    with pytest.raises(InputError, match="3 of 3 samples have no <name>.jpg"):
        MultimodalDataset(_Skeletons(), rgb_images=str(tmp_path), rgb_preprocess=lambda image: image)


def test_public_mmcl_key_map():
    objective = _objective(rgb_dim=1000, text_dim=3, trainable_rgb_encoder=None)
    ours = objective.state_dict()
    theirs = {k.removeprefix("backbone."): v for k, v in ours.items() if k.startswith("backbone.")}
    theirs.update({"mlp.0.weight": torch.randn(64, 3), "mlp.0.bias": torch.randn(64),
                   "mlp.2.weight": torch.randn(2, 64), "mlp.2.bias": torch.randn(2),
                   "PosMatrix": torch.full((5,), 2.0), "NegMatrix": torch.full((5,), 3.0),
                   "FAM_Aligh.mlp.0.weight": torch.randn(32, 1000), "FAM_Aligh.mlp.0.bias": torch.randn(32),
                   "FAM_Aligh.mlp.2.weight": torch.randn(32, 32), "FAM_Aligh.mlp.2.bias": torch.randn(32),
                   "inception_v3.fc.weight": torch.randn(1000, 2048)})
    assert public_key_to_ours("FAM_Aligh.mlp.2.bias") == "fam.mlp.2.bias"
    assert public_key_to_ours("l1.gcn1.PA") == "backbone.l1.gcn1.PA"
    mapped, report = map_public_state(theirs, ours)
    objective.load_state_dict(mapped, strict=False)
    assert torch.equal(objective.frm.pos, torch.full((5,), 2.0)) and torch.equal(objective.frm.neg, torch.full((5,), 3.0))
    assert "frm.phi.0.weight" in report["mapped"]
    # FAM here is 8·4 = 32 wide (base_channel 8): the public 256-wide MLP would be ignored, this one maps
    assert "fam.mlp.0.weight" in report["mapped"]
    assert report["ignored"] == ["inception_v3.fc.weight"] and report["missing"] == []
