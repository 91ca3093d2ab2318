"""LLM text features at dataset scale: feature kinds, several prompts, shards and merge, resume, store checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode
from transformers import BlipForQuestionAnswering, BlipProcessor

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
#: The public MMCL script's image transform (LLMs/blip.py of liujf69/MMCL-Action), written here independently.
PUBLIC_TRANSFORM = transforms.Compose([
    transforms.Resize((480, 480), interpolation=InterpolationMode.BICUBIC),
    transforms.ToTensor(),
    transforms.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
])


def _run(strips: dict[str, Path], model: Path, out: Path, *extra: str, max_new_tokens: int | None = 4) -> int:
    """``answer_questions`` on the strips, short answers unless ``max_new_tokens`` is None (the defaults)."""
    length = [] if max_new_tokens is None else ["--max-new-tokens", str(max_new_tokens)]
    return answer_questions.main(["--images", str(strips["images"]), "--names", str(strips["names"]),
                                  "--model", str(model), "--out", str(out), "--device", "cpu", "--batch-size", "2",
                                  *length, "--local-files-only", *extra])


@pytest.fixture(scope="module")
def capfilt_dir(tmp_path_factory) -> Path:
    """A tiny BLIP laid out as Salesforce/blip-vqa-capfilt-large: processor and vision tower at 480 px (in 25
    patches of 96, to stay fast)."""
    return save_tiny_blip(tmp_path_factory.mktemp("capfilt"), image_size=480, patch_size=96)


def _blip_generate(model_dir: Path, strips: dict[str, Path], **options: int) -> np.ndarray:
    """(names, 10) ids of ``BlipForQuestionAnswering.generate(**options)`` asked the default question about each
    strip alone, as the public script asks, on its transform's pixels; padded with the pad id."""
    model = BlipForQuestionAnswering.from_pretrained(model_dir).eval()
    question = BlipProcessor.from_pretrained(model_dir).tokenizer([QUESTION], return_tensors="pt")
    question.input_ids[:, 0] = model.config.text_config.vocab_size - 1  # the tiny vocabulary's [ENC], as BLIP sets it
    ids = np.full((len(NAMES), 10), model.config.text_config.pad_token_id, np.float32)
    for row, name in enumerate(NAMES):
        with Image.open(strips["images"] / f"{name}.jpg") as image:
            pixels = PUBLIC_TRANSFORM(image.convert("RGB")).unsqueeze(0)
        answer = model.generate(input_ids=question.input_ids, attention_mask=question.attention_mask,
                                pixel_values=pixels, **options)[0]
        ids[row, :len(answer)] = answer.numpy()
    return ids


def _same_store(a: Path, b: Path) -> None:
    left, right = FeatureStore(a, "text"), FeatureStore(b, "text")
    assert left.names == right.names and left.meta == right.meta
    np.testing.assert_allclose(np.asarray(left.features, np.float32), np.asarray(right.features, np.float32),
                               rtol=1e-3, atol=1e-3)
    assert (a / "answers.jsonl").read_text() == (b / "answers.jsonl").read_text()


def test_token_ids_are_blip_s_own_vqa_answer(strips, capfilt_dir, tmp_path):
    """(a) By default the stored ids are those of BLIP's VQA inference as the public script ran it:
    ``generate`` with 3 beams, max_length 10 and min_length 1 (both counting [DEC]), on 480 × 480 bicubic CLIP
    pixels; (b) beam search answers differently from greedy decoding here, in the 3 ids stored by default too."""
    assert _run(strips, capfilt_dir, tmp_path / "run", "--features", "token-ids", "--k", "10",
                max_new_tokens=None) == 0
    store = FeatureStore(tmp_path / "run" / "default", "text")
    assert store.names == NAMES and store.dim == 10 and store.features.dtype == np.float32
    assert not (tmp_path / "run" / "default" / "partial").exists()
    assert {key: store.meta[key] for key in ("features", "question", "num_beams", "max_new_tokens", "min_new_tokens",
                                             "image_size")} == {"features": "token-ids", "question": QUESTION,
                                                                "num_beams": 3, "max_new_tokens": 9,
                                                                "min_new_tokens": 0, "image_size": 480}
    beam = _blip_generate(capfilt_dir, strips, num_beams=3, max_length=10, min_length=1)
    np.testing.assert_array_equal(store.features, beam)
    assert (store.features[:, 0] == 5).all()  # BLIP's [DEC], as published
    assert (store.features[:, -1] != 0).any()  # an answer runs to the length limit: the lengths agree
    greedy = _blip_generate(capfilt_dir, strips, num_beams=1, max_length=10)
    assert (greedy[:, :3] != beam[:, :3]).any()  # 3 of the 5 strips, in their first or second word


def test_token_ids_pad_short_answers():
    generation = vlm.Generation(["a"], torch.tensor([[5, 21, 3]]), torch.tensor([[True, True]]), None)
    np.testing.assert_array_equal(token_ids(generation, k=5, pad_id=0), [[5, 21, 3, 0, 0]])
    np.testing.assert_array_equal(token_ids(generation, k=2, pad_id=0), [[5, 21]])


def test_blip_questions_start_with_enc_as_blip_s_own_code(strips, blip_dir, monkeypatch):
    answerer = vlm.load_answerer(str(blip_dir), device="cpu", local_files_only=True)
    tokenizer = answerer.processor.tokenizer
    enc = tokenizer.convert_tokens_to_ids("[ENC]")
    inputs = answerer.inputs([open_strip(strips["images"], NAMES[0])], [QUESTION])
    assert inputs["input_ids"][0, 0] == enc != tokenizer.cls_token_id
    # a tokenizer without [ENC]: the id after [DEC], where BLIP's own tokenizer adds it
    unknown = tokenizer.unk_token_id
    monkeypatch.setattr(type(tokenizer), "convert_tokens_to_ids", lambda self, token: unknown)
    assert answerer.enc_token_id == answerer.model.config.text_config.bos_token_id + 1


def test_blip_images_as_the_public_script_makes_them(strips, capfilt_dir, blip_dir):
    """(c) ``--image-size 480`` squashes the whole strip as the public script's transform does; a vision tower made
    for another size gets its position embeddings interpolated."""
    answerer = vlm.load_answerer(str(capfilt_dir), device="cpu", local_files_only=True, image_size=480)
    images = [open_strip(strips["images"], name) for name in NAMES[:2]]
    inputs = answerer.inputs(images, [QUESTION] * 2)
    torch.testing.assert_close(inputs["pixel_values"], torch.stack([PUBLIC_TRANSFORM(image) for image in images]),
                               rtol=0, atol=1e-6)
    assert "interpolate_pos_encoding" not in inputs
    small = vlm.load_answerer(str(blip_dir), device="cpu", max_new_tokens=2, local_files_only=True, image_size=48)
    assert small.inputs(images, [QUESTION] * 2)["interpolate_pos_encoding"] is True  # a 32 px tower
    assert small.generate(images, [QUESTION] * 2).tokens.shape == (2, 3)


def test_settings_that_cannot_apply_are_refused_up_front(strips, blip_dir, llava_dir, tmp_path, capsys):
    assert _run(strips, blip_dir, tmp_path / "run", "--features", "hidden", "--num-beams", "3") == 2
    assert _run(strips, llava_dir, tmp_path / "run", *CHAT, "--image-size", "480") == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "--features hidden needs greedy decoding (--num-beams 1)" in err[0], err
    assert "--image-size" in err[1] and not (tmp_path / "run").exists()
    answerer = vlm.load_answerer(str(blip_dir), device="cpu", local_files_only=True, num_beams=3)
    with pytest.raises(InputError, match="hidden states need greedy decoding"):
        answerer.generate([open_strip(strips["images"], NAMES[0])], [QUESTION], layer=-1)


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


def test_several_prompts_are_stored_side_by_side(strips, capfilt_dir, tmp_path):
    prompts = ["person-holding-objects", "describe-hand"]
    assert _run(strips, capfilt_dir, tmp_path / "run", "--features", "token-ids", "--template", *prompts) == 0
    folders = [tmp_path / "run" / prompt for prompt in prompts]
    assert [FeatureStore(folder, "text").meta["question"] for folder in folders] == [TEMPLATES[p] for p in prompts]
    assert open_feature_stores([str(f) for f in folders], "text", "concat").dim == 6
    group = open_feature_stores([str(f) for f in folders], "text", "mean")
    rows = group.rows_for(NAMES[::-1])
    expected = np.mean([FeatureStore(f, "text").features[::-1] for f in folders], axis=0)
    np.testing.assert_allclose(group.row(rows[0]), expected[0])


def test_a_run_folder_refuses_other_settings(strips, capfilt_dir, tmp_path, capsys):
    assert _run(strips, capfilt_dir, tmp_path / "run", "--features", "token-ids") == 0
    (strips["images"] / f"{NAMES[4]}.jpg").unlink()
    assert _run(strips, capfilt_dir, tmp_path / "part", "--features", "token-ids") == 1
    capsys.readouterr()
    for out in ("run", "part"):
        for option, before, now in (("--k", 3, 4), ("--num-beams", 3, 1), ("--image-size", 480, 96)):
            assert _run(strips, capfilt_dir, tmp_path / out, "--features", "token-ids", option, str(now)) == 2
            err = capsys.readouterr().err.splitlines()
            setting = option[2:].replace("-", "_")
            assert len(err) == 1 and f"made with other settings ({setting}: {before}, now {now})" in err[0], err


def test_one_answers_file_takes_one_question_of_answers_only(strips, blip_dir, tmp_path, capsys):
    assert _run(strips, blip_dir, tmp_path / "a.jsonl", "--features", "hidden") == 2
    assert _run(strips, blip_dir, tmp_path / "a.jsonl", "--template", "describe-hand", "describe-foot") == 2
    assert capsys.readouterr().err.count("error: --out") == 2


@pytest.mark.parametrize("kind, other, differs", [("token-ids", "--num-beams", "num_beams: 1 vs 3"),
                                                   ("hidden", "--min-new-tokens", "min_new_tokens: 1 vs 0")])
def test_sharded_runs_merged_equal_an_unsharded_run(kind, other, differs, strips, blip_dir, capfilt_dir, tmp_path,
                                                    capsys):
    model = capfilt_dir if kind == "token-ids" else blip_dir
    extra = ["--features", kind, "--template", "describe-hand", "hand-touching-head"]
    assert _run(strips, model, tmp_path / "whole", *extra) == 0
    for shard in range(3):
        assert _run(strips, model, tmp_path / f"shard{shard}", *extra, "--shard", f"{shard}/3") == 0
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
    assert _run(strips, model, tmp_path / "other", *extra, other, "1", "--shard", "2/3") == 0
    assert merge_features.main(["--parts", *parts[:2], str(tmp_path / "other"), "--out", str(tmp_path / "mixed")]) == 2
    err = capsys.readouterr().err
    assert f"made differently from {parts[0]}" in err and f"({differs})" in err
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


def test_the_public_frm_reads_token_ids_as_is(strips, capfilt_dir, tmp_path):
    """A public MMCL checkpoint's Φ = Linear(3→64) → ReLU → Linear(64→2) and its scales refine with our ids."""
    assert _run(strips, capfilt_dir, tmp_path / "run", "--features", "token-ids") == 0
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
    ("token-ids", "capfilt", []),
    ("hidden", "llava", CHAT),
    ("clip-text", "blip", ["--text-model", "ViT-S-32", "--text-pretrained", "none"]),
])
def test_each_kind_trains_mmcl_from_strips(kind, model, extra, dataset_dir, make_config, blip_dir, capfilt_dir,
                                           llava_dir, tmp_path):
    """Strips of the tiny dataset's training samples → one feature kind, two prompts → an MMCL epoch with FRM."""
    names = (dataset_dir / "train_names.txt").read_text().split()
    prompts = ["person-holding-objects", "describe-person"]
    strips = write_strips(tmp_path, names)
    models = {"blip": blip_dir, "capfilt": capfilt_dir, "llava": llava_dir}
    assert _run(strips, models[model], tmp_path / "text", "--features", kind, "--template", *prompts,
                "--batch-size", "8", *extra) == 0
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
