"""LLM text features at dataset scale: feature kinds, several prompts, shards and merge, resume, store checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import main_mmcl
from bench.reference_hidden_states import layer_states
from engine.errors import InputError
from engine.refine import load_refinement, refined_scores
from feeders.feature_store import FeatureStore, open_feature_stores, write_feature_store
from llm_features import answer_questions, check_features, merge_features, vlm
from llm_features.answer_questions import QUESTION, TEMPLATES, open_strip
from llm_features.kinds import pooled_hidden, token_ids
from model.ctrgcn import Model
from model.frm import FeatureRefinement
from model.mmcl import MMCLObjective
from model.public_mmcl import map_public_state
from tests.conftest import NUM_CLASS
from tests.tiny_vlms import NAMES, save_tiny_blip, save_tiny_llava, write_strips

CHAT = ["--backend", "image-text-to-text"]


def _run(strips: dict[str, Path], model: Path, out: Path, *extra: str) -> int:
    return answer_questions.main(["--images", str(strips["images"]), "--names", str(strips["names"]),
                                  "--model", str(model), "--out", str(out), "--device", "cpu", "--batch-size", "2",
                                  "--max-new-tokens", "4", "--local-files-only", *extra])


def _same_store(a: Path, b: Path) -> None:
    left, right = FeatureStore(a, "text"), FeatureStore(b, "text")
    assert left.names == right.names and left.meta == right.meta
    np.testing.assert_allclose(np.asarray(left.features, np.float32), np.asarray(right.features, np.float32),
                               rtol=1e-3, atol=1e-3)
    assert (a / "answers.jsonl").read_text() == (b / "answers.jsonl").read_text()


def test_token_ids_are_the_answers_first_ids_padded(strips, blip_dir, tmp_path):
    assert _run(strips, blip_dir, tmp_path / "run", "--features", "token-ids", "--k", "3") == 0
    store = FeatureStore(tmp_path / "run" / "default", "text")
    assert store.names == NAMES and store.dim == 3 and store.features.dtype == np.float32
    assert store.meta["features"] == "token-ids" and store.meta["question"] == QUESTION
    assert not (tmp_path / "run" / "default" / "partial").exists()
    answerer = vlm.load_answerer(str(blip_dir), device="cpu", max_new_tokens=4, local_files_only=True)
    generation = answerer.generate([open_strip(strips["images"], NAMES[0])], [QUESTION])
    np.testing.assert_array_equal(store.features[0], generation.tokens[0, :3].numpy())
    assert store.features[0, 0] == answerer.model.generation_config.bos_token_id  # BLIP's [DEC], as published
    wide = token_ids(generation, k=8, pad_id=answerer.pad_id)
    assert wide.shape == (1, 8) and (wide[0, generation.tokens.shape[1]:] == answerer.pad_id).all()


def test_hidden_states_pooled_over_the_answer(strips, llava_dir, tmp_path):
    assert _run(strips, llava_dir, tmp_path / "run", *CHAT, "--features", "hidden") == 0
    store = FeatureStore(tmp_path / "run" / "default", "text")
    assert store.dim == 16 and store.features.dtype == np.float16  # the Llama's hidden size
    answerer = vlm.load_answerer(str(llava_dir), backend="image-text-to-text", device="cpu", max_new_tokens=4,
                                 local_files_only=True)
    images = [open_strip(strips["images"], name) for name in NAMES[:2]]
    generation = answerer.generate(images, [QUESTION] * 2, layer=-1)
    np.testing.assert_allclose(store.features[:2], pooled_hidden(generation, "mean"), rtol=1e-2, atol=1e-3)
    assert _run(strips, llava_dir, tmp_path / "last", *CHAT, "--features", "hidden", "--pool", "last",
                "--layer", "0", "--store-dtype", "float32") == 0
    last = FeatureStore(tmp_path / "last" / "default", "text")
    assert last.features.dtype == np.float32 and not np.allclose(last.features, store.features, atol=1e-2)
    assert _run(strips, llava_dir, tmp_path / "bf16", *CHAT, "--features", "hidden", "--dtype", "bfloat16") == 0
    assert "16-d float16, names unique, values finite" in FeatureStore(tmp_path / "bf16" / "default", "text").check(NAMES)
    assert _run(strips, llava_dir, tmp_path / "deep", *CHAT, "--features", "hidden", "--layer", "2") == 2


@pytest.fixture(scope="module")
def two_layer_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("two_layers")
    return {"blip": save_tiny_blip(root / "blip", layers=2), "image-text-to-text": save_tiny_llava(root / "llava", layers=2)}


@pytest.mark.parametrize("backend", ["blip", "image-text-to-text"])
def test_the_layer_hook_keeps_what_generate_s_hidden_states_hold(backend, two_layer_models, strips):
    """Every layer, questions of several lengths (left padding): the hook's states equal those that
    ``generate(output_hidden_states=True)`` returns for the positions that emitted the answer."""
    answerer = vlm.load_answerer(str(two_layer_models[backend]), backend, "cpu", max_new_tokens=5,
                                 local_files_only=True)
    images = [open_strip(strips["images"], name) for name in NAMES]
    questions = [QUESTION, TEMPLATES["describe-hand"], "a", QUESTION, TEMPLATES["hand-touching-foot"]]
    for layer in (0, 1, 2, -1, -3):
        generation = answerer.generate(images, questions, layer)
        torch.testing.assert_close(generation.states, layer_states(answerer, images, questions, layer),
                                   rtol=1e-6, atol=1e-6)
    with pytest.raises(InputError, match="--layer 3: the model has 3 hidden-state layers"):
        answerer.generate(images, questions, 3)


def test_pooling_masks_what_follows_the_end_token():
    states = torch.arange(12, dtype=torch.float32).reshape(1, 4, 3)
    generation = vlm.Generation(["a"], torch.zeros(1, 4, dtype=torch.long), torch.tensor([[True, True, False, False]]),
                                states)
    np.testing.assert_array_equal(pooled_hidden(generation, "mean"), [[1.5, 2.5, 3.5]])
    np.testing.assert_array_equal(pooled_hidden(generation, "last"), [[3.0, 4.0, 5.0]])


def test_several_prompts_are_stored_side_by_side(strips, blip_dir, tmp_path):
    prompts = ["person-holding-objects", "describe-hand"]
    assert _run(strips, blip_dir, tmp_path / "run", "--features", "token-ids", "--template", *prompts) == 0
    folders = [tmp_path / "run" / prompt for prompt in prompts]
    assert [FeatureStore(folder, "text").meta["question"] for folder in folders] == [TEMPLATES[p] for p in prompts]
    assert open_feature_stores([str(f) for f in folders], "text", "concat").dim == 6
    group = open_feature_stores([str(f) for f in folders], "text", "mean")
    rows = group.rows_for(NAMES[::-1])
    expected = np.mean([FeatureStore(f, "text").features[::-1] for f in folders], axis=0)
    np.testing.assert_allclose(group.row(rows[0]), expected[0])


def test_a_run_folder_refuses_other_settings(strips, blip_dir, tmp_path, capsys):
    assert _run(strips, blip_dir, tmp_path / "run", "--features", "token-ids") == 0
    (strips["images"] / f"{NAMES[4]}.jpg").unlink()
    assert _run(strips, blip_dir, tmp_path / "part", "--features", "token-ids") == 1
    capsys.readouterr()
    for out in ("run", "part"):
        assert _run(strips, blip_dir, tmp_path / out, "--features", "token-ids", "--k", "4") == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "made with other settings (k: 3, now 4)" in err[0], err


def test_one_answers_file_takes_one_question_of_answers_only(strips, blip_dir, tmp_path, capsys):
    assert _run(strips, blip_dir, tmp_path / "a.jsonl", "--features", "hidden") == 2
    assert _run(strips, blip_dir, tmp_path / "a.jsonl", "--template", "describe-hand", "describe-foot") == 2
    assert capsys.readouterr().err.count("error: --out") == 2


@pytest.mark.parametrize("kind", ["token-ids", "hidden"])
def test_sharded_runs_merged_equal_an_unsharded_run(kind, strips, blip_dir, tmp_path, capsys):
    extra = ["--features", kind, "--template", "describe-hand", "hand-touching-head"]
    assert _run(strips, blip_dir, tmp_path / "whole", *extra) == 0
    for shard in range(3):
        assert _run(strips, blip_dir, tmp_path / f"shard{shard}", *extra, "--shard", f"{shard}/3") == 0
    parts = [str(tmp_path / f"shard{shard}") for shard in range(3)]
    assert len(FeatureStore(tmp_path / "shard1" / "describe-hand", "text").names) == 2
    argv = ["--parts", *parts, "--out", str(tmp_path / "merged"), "--names", str(strips["names"])]
    assert merge_features.main(argv) == 0
    for prompt in ("describe-hand", "hand-touching-head"):
        _same_store(tmp_path / "whole" / prompt, tmp_path / "merged" / prompt)
    capsys.readouterr()
    assert merge_features.main(["--parts", *parts[:2], "--out", str(tmp_path / "few"),
                                "--names", str(strips["names"])]) == 2
    assert "the parts lack 1 of the 5 names" in capsys.readouterr().err
    assert merge_features.main(["--parts", parts[0], parts[0], "--out", str(tmp_path / "twice")]) == 2
    assert "is in both" in capsys.readouterr().err
    (tmp_path / "shard2" / "describe-hand" / "meta.json").unlink()
    assert merge_features.main(["--parts", *parts, "--out", str(tmp_path / "early")]) == 2
    assert "not a complete store" in capsys.readouterr().err


def test_resumed_run_equals_an_uninterrupted_one(strips, llava_dir, tmp_path, capsys):
    extra = [*CHAT, "--features", "hidden", "--template", "describe-person", "describe-foot"]
    assert _run(strips, llava_dir, tmp_path / "whole", *extra) == 0
    strip = strips["images"] / f"{NAMES[3]}.jpg"
    strip.rename(strip.with_suffix(".bak"))
    assert _run(strips, llava_dir, tmp_path / "run", *extra) == 1  # stops short: the stores stay partial
    partial = tmp_path / "run" / "describe-foot" / "partial" / "answers.jsonl"
    assert not (tmp_path / "run" / "describe-foot" / "meta.json").exists()
    partial.write_text(partial.read_text()[:-9])  # and the last line was cut off
    strip.with_suffix(".bak").rename(strip)
    capsys.readouterr()
    assert _run(strips, llava_dir, tmp_path / "run", *extra) == 0
    assert "answered 3, already there 7, failed 0" in capsys.readouterr().out
    for prompt in ("describe-person", "describe-foot"):
        _same_store(tmp_path / "whole" / prompt, tmp_path / "run" / prompt)
    assert _run(strips, llava_dir, tmp_path / "run", *extra) == 0
    assert "answered 0, already there 10" in capsys.readouterr().out


def test_check_features_finds_what_the_trainer_would_refuse(tmp_path, capsys):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(NAMES) + "\n")
    features = np.zeros((5, 4), np.float16)
    write_feature_store(tmp_path / "good", features, NAMES, {"kind": "text", "features": "hidden"})
    assert check_features.main(["--stores", str(tmp_path / "good"), "--names", str(names)]) == 0
    assert "hidden, 5 of 5 samples, 4-d float16" in capsys.readouterr().out
    features[3, 1] = np.nan
    write_feature_store(tmp_path / "nan", features, NAMES, {"kind": "text"})
    write_feature_store(tmp_path / "few", features[:4], NAMES[:4], {"kind": "text"})
    write_feature_store(tmp_path / "ints", np.zeros((5, 4), np.int64), NAMES, {"kind": "text"})
    (tmp_path / "twice").mkdir()
    for file in ("features.npy", "meta.json"):
        (tmp_path / "twice" / file).write_bytes((tmp_path / "good" / file).read_bytes())
    (tmp_path / "twice" / "names.txt").write_text("\n".join([*NAMES[:4], NAMES[0]]) + "\n")
    expected = {"nan": f"1 samples have NaN or inf features, e.g. {NAMES[3]}", "few": "1 of 5 samples have no",
                "ints": "dtype int64", "twice": f"1 duplicate sample names, e.g. {NAMES[0]}"}
    for store, message in expected.items():
        assert check_features.main(["--stores", str(tmp_path / store), "--names", str(names)]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and message in err[0], err


def test_the_public_frm_reads_token_ids_as_is(strips, blip_dir, tmp_path):
    """A public MMCL checkpoint's Φ = Linear(3→64) → ReLU → Linear(64→2) and its scales refine with our ids."""
    assert _run(strips, blip_dir, tmp_path / "run", "--features", "token-ids") == 0
    torch.manual_seed(0)
    public = {"mlp.0.weight": torch.randn(64, 3) * 1e-3, "mlp.0.bias": torch.randn(64), "mlp.2.weight": torch.randn(2, 64),
              "mlp.2.bias": torch.randn(2), "PosMatrix": torch.rand(NUM_CLASS) + 0.5,
              "NegMatrix": torch.rand(NUM_CLASS) + 0.5}
    objective = MMCLObjective(Model(num_class=NUM_CLASS, base_channel=8), NUM_CLASS, 32, text_dim=3)
    _, report = map_public_state(public, objective.state_dict())
    assert not report["ignored"] and {"frm.phi.0.weight", "frm.pos", "frm.neg"} <= set(report["mapped"])
    scores = np.random.default_rng(0).standard_normal((5, NUM_CLASS)).astype(np.float32)
    refined = refined_scores(load_refinement(public, "public.pt", NUM_CLASS), scores, NAMES,
                             tmp_path / "run" / "default")
    ids = torch.from_numpy(np.array(FeatureStore(tmp_path / "run" / "default", "text").features))
    hidden = torch.relu(ids @ public["mlp.0.weight"].T + public["mlp.0.bias"])
    w = torch.softmax(hidden @ public["mlp.2.weight"].T + public["mlp.2.bias"], dim=1)
    expected = torch.from_numpy(scores) * (w[:, :1] * public["PosMatrix"] + w[:, 1:] * public["NegMatrix"])
    np.testing.assert_allclose(refined, expected.numpy(), rtol=1e-5, atol=1e-5)


def test_refinement_reads_several_stores_combined_as_in_training(tmp_path):
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal((5, 3)).astype(np.float32) for _ in range(2)]
    for index, part in enumerate(parts):
        write_feature_store(tmp_path / f"p{index}", part, NAMES, {"kind": "text"})
    frm = FeatureRefinement(6, NUM_CLASS)
    with torch.no_grad():
        frm.pos.uniform_(0.5, 2)
    scores = rng.standard_normal((5, NUM_CLASS)).astype(np.float32)
    refined = refined_scores(frm, scores, NAMES[::-1], [tmp_path / "p0", tmp_path / "p1"])
    text = torch.from_numpy(np.concatenate(parts, axis=1)[::-1].copy())
    np.testing.assert_allclose(refined, frm(torch.from_numpy(scores), text).detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("kind, model, extra", [
    ("token-ids", "blip", []),
    ("hidden", "llava", CHAT),
    ("clip-text", "blip", ["--text-model", "ViT-S-32", "--text-pretrained", "none"]),
])
def test_each_kind_trains_mmcl_from_strips(kind, model, extra, dataset_dir, make_config, blip_dir, llava_dir,
                                           tmp_path):
    """Strips of the tiny dataset's training samples → one feature kind, two prompts → an MMCL epoch with FRM."""
    names = (dataset_dir / "train_names.txt").read_text().split()
    prompts = ["person-holding-objects", "describe-person"]
    strips = write_strips(tmp_path, names)
    assert _run(strips, {"blip": blip_dir, "llava": llava_dir}[model], tmp_path / "text", "--features", kind,
                "--template", *prompts, "--batch-size", "8", *extra) == 0
    config = make_config(tmp_path, num_epoch=1, mmcl={
        "frm": True, "text_features": [str(tmp_path / "text" / prompt) for prompt in prompts]})
    assert main_mmcl.main(["--config", str(config)]) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "loss_refine" in log and f"{kind}, {len(names)} of {len(names)} samples" in log
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    width = FeatureStore(tmp_path / "text" / prompts[0], "text").dim * 2
    assert state["frm.phi.0.weight"].shape[1] == width


def test_trainer_refuses_a_store_with_nan(tmp_path, make_config, dataset_dir, capsys):
    names = (dataset_dir / "train_names.txt").read_text().split()
    features = np.ones((len(names), 4), np.float32)
    features[2, 0] = np.inf
    write_feature_store(tmp_path / "text", features, names, {"kind": "text"})
    config = make_config(tmp_path, mmcl={"frm": True, "text_features": str(tmp_path / "text")})
    assert main_mmcl.main(["--config", str(config)]) == 2
    assert f"1 samples have NaN or inf features, e.g. {names[2]}" in capsys.readouterr().err
