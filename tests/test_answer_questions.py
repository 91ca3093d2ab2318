"""Asking a VLM about the strips (llm_features.answer_questions, llm_features.vlm) with tiny random local models."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.errors import InputError
from feeders.feature_store import FeatureStore
from llm_features import answer_questions, encode_answers, vlm
from llm_features.answer_questions import QUESTION, TEMPLATES
from tests.tiny_vlms import NAMES
from tests.tiny_vlms import strip_image as _image


def _run(strips: dict[str, Path], model: Path, out: Path, *extra: str) -> int:
    return answer_questions.main(["--images", str(strips["images"]), "--names", str(strips["names"]),
                                  "--model", str(model), "--out", str(out), "--device", "cpu", "--batch-size", "2",
                                  "--max-new-tokens", "4", "--local-files-only", *extra])


def _rows(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_one_answer_per_name_deterministic(strips, blip_dir, tmp_path, capsys):
    assert _run(strips, blip_dir, tmp_path / "a.jsonl") == 0
    rows = _rows(tmp_path / "a.jsonl")
    assert [row["name"] for row in rows] == NAMES
    assert all(row["question"] == QUESTION and isinstance(row["answer"], str) and row["answer"] for row in rows)
    assert "answered 5, already there 0, failed 0" in capsys.readouterr().out
    assert _run(strips, blip_dir, tmp_path / "b.jsonl", "--batch-size", "5") == 0
    assert (tmp_path / "b.jsonl").read_text() == (tmp_path / "a.jsonl").read_text()
    assert not (tmp_path / "a.jsonl.errors.txt").exists()


def test_resume_redoes_only_missing_and_cut_off_lines(strips, blip_dir, tmp_path, capsys):
    out = tmp_path / "answers.jsonl"
    assert _run(strips, blip_dir, out) == 0
    full = {row["name"]: row for row in _rows(out)}
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text(lines[0] + lines[2] + lines[4][:17], encoding="utf-8")  # lines 2 and 4 lost, line 5 cut off
    capsys.readouterr()
    assert _run(strips, blip_dir, out) == 0
    captured = capsys.readouterr()
    assert "answered 3, already there 2, failed 0" in captured.out
    assert "dropped an incomplete last line" in captured.err
    rows = _rows(out)
    assert sorted(row["name"] for row in rows) == sorted(NAMES)
    assert {row["name"]: row for row in rows} == full
    assert _run(strips, blip_dir, out) == 0
    assert "answered 0, already there 5, failed 0" in capsys.readouterr().out


def test_missing_and_unreadable_strips_are_logged_and_retried(strips, blip_dir, tmp_path, capsys):
    out = tmp_path / "answers.jsonl"
    (strips["images"] / f"{NAMES[1]}.jpg").unlink()
    (strips["images"] / f"{NAMES[3]}.jpg").write_bytes(b"not a jpeg")
    assert _run(strips, blip_dir, out) == 1
    captured = capsys.readouterr()
    assert "answered 3, already there 0, failed 2" in captured.out
    assert f"{NAMES[1]}: " in captured.err and "strip not found" in captured.err
    assert f"{NAMES[3]}: " in captured.err and "unreadable image" in captured.err
    log = (tmp_path / "answers.jsonl.errors.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in log] == [NAMES[1], NAMES[3]]
    assert [row["name"] for row in _rows(out)] == [NAMES[0], NAMES[2], NAMES[4]]
    for index in (1, 3):
        _image(index).save(strips["images"] / f"{NAMES[index]}.jpg")
    assert _run(strips, blip_dir, out) == 0
    assert "answered 2, already there 3, failed 0" in capsys.readouterr().out
    assert sorted(row["name"] for row in _rows(out)) == sorted(NAMES)
    assert not (tmp_path / "answers.jsonl.errors.txt").exists()


def test_another_question_on_an_existing_file_is_an_error(strips, blip_dir, tmp_path, capsys):
    out = tmp_path / "answers.jsonl"
    assert _run(strips, blip_dir, out, "--template", "hand-touching-head") == 0
    assert {row["question"] for row in _rows(out)} == {TEMPLATES["hand-touching-head"]}
    before = out.read_text()
    capsys.readouterr()
    assert _run(strips, blip_dir, out) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(out) in err[0]
    assert out.read_text() == before


@pytest.mark.parametrize("case", ["names", "model", "images", "batch", "question"])
def test_bad_input_is_one_error_line(case, strips, blip_dir, tmp_path, capsys):
    model, extra = blip_dir, []
    if case == "names":
        strips["names"] = tmp_path / "nope.txt"
    elif case == "model":
        model = tmp_path / "no_model"
    elif case == "images":
        strips["images"] = tmp_path / "no_strips"
    elif case == "batch":
        extra = ["--batch-size", "0"]
    else:
        extra = ["--question", " "]
    assert _run(strips, model, tmp_path / "answers.jsonl", *extra) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_help_lists_the_templates(capsys):
    with pytest.raises(SystemExit):
        answer_questions.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in TEMPLATES)
    assert TEMPLATES["describe-foot"] in help_text and QUESTION in help_text
    with pytest.raises(SystemExit):
        answer_questions.main(["--images", "x", "--names", "y", "--model", "m", "--out", "o",
                               "--question", "q", "--template", "describe-hand"])


def test_remote_code_is_off_unless_asked(strips, blip_dir, tmp_path, monkeypatch, capsys):
    calls = []

    def recording(loader, source, **options):
        calls.append(options)
        raise InputError("stopped by the test")

    monkeypatch.setattr(vlm, "from_pretrained", recording)
    assert _run(strips, blip_dir, tmp_path / "answers.jsonl") == 2
    assert _run(strips, blip_dir, tmp_path / "answers.jsonl", "--trust-remote-code") == 2
    assert [call["trust_remote_code"] for call in calls] == [False, True]
    assert all(call["local_files_only"] is True for call in calls)
    assert capsys.readouterr().err.count("error: stopped by the test") == 2


def test_blip_answers_do_not_depend_on_the_batch(blip_dir):
    answerer = vlm.load_answerer(str(blip_dir), device="cpu", max_new_tokens=4, local_files_only=True)
    assert answerer.model.dtype == torch.float32 and not answerer.model.training
    images = [_image(seed) for seed in range(4)]
    batched = answerer.answer(images, [QUESTION] * 4)
    assert batched == [answerer.answer([image], [QUESTION])[0] for image in images]
    assert all(len(answer.split()) <= 4 for answer in batched) and len(set(batched)) > 1
    assert answerer.answer([], []) == []


def test_chat_backend_answers_only_the_new_tokens(llava_dir):
    answerer = vlm.load_answerer(str(llava_dir), backend="image-text-to-text", device="cpu", max_new_tokens=3,
                                 local_files_only=True)
    images = [_image(seed) for seed in range(3)]
    questions = [QUESTION, TEMPLATES["describe-hand"], "whether ?"]
    batched = answerer.answer(images, questions)
    assert batched == [answerer.answer([image], [question])[0] for image, question in zip(images, questions)]
    # one word a token: the prompt (USER: <question> ASSISTANT:) has more than 3, so it is not in the answers
    assert all(isinstance(answer, str) and len(answer.split()) <= 3 for answer in batched)
    assert len(set(batched)) > 1


def test_chat_backend_through_the_command(strips, llava_dir, tmp_path):
    assert _run(strips, llava_dir, tmp_path / "a.jsonl", "--backend", "image-text-to-text") == 0
    assert [row["name"] for row in _rows(tmp_path / "a.jsonl")] == NAMES


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error shown without CUDA")
def test_cuda_without_cuda_is_an_input_error():
    with pytest.raises(InputError, match="CUDA is not available"):
        vlm.resolve_device("cuda")


def test_answers_feed_encode_answers(strips, blip_dir, tmp_path):
    answers, store = tmp_path / "answers.jsonl", tmp_path / "text"
    assert _run(strips, blip_dir, answers) == 0
    assert encode_answers.main(["--answers", str(answers), "--model", "ViT-S-32", "--pretrained", "none",
                                "--device", "cpu", "--out", str(store)]) == 0
    text = FeatureStore(store, "text")
    assert (store / "names.txt").read_text().split() == NAMES
    assert text.rows_for(NAMES).tolist() == list(range(len(NAMES)))
