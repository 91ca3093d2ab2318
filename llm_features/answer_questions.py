"""Ask a vision-language model one question about every sample's temporal RGB strip; append the answers to a file.

    python -m llm_features.answer_questions --images data/ntu120/rgb_strips \\
        --names data/ntu120/xsub/train_names.txt --model Salesforce/blip-vqa-base \\
        --out data/ntu120/answers.jsonl

Writes one JSON line per sample, ``{"name": ..., "question": ..., "answer": ...}``, the input of
``llm_features.encode_answers``. Answers are appended and flushed batch by batch, so a stopped run resumes
where it left off: names already answered in ``--out`` are skipped and a cut-off last line is dropped and
redone; a file holding answers to another question is an error. A strip that is missing or unreadable is
reported, listed with the reason in ``<out>.errors.txt`` (rewritten by each run), and retried on the next run;
the others go on.
Exit status: 0 when every name is answered, 1 when some strips failed, 2 on bad arguments or input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from engine.errors import InputError, command
from engine.fileio import read_text, write_text_atomic
from feeders.multimodal import read_strip
from llm_features.encode_answers import read_answers
from llm_features.names import read_names
from llm_features.vlm import BACKENDS, VisualQuestionAnswerer, load_answerer

#: The default instruction (SPEC §4).
QUESTION = "whether the people are holding objects?"
_ASK, _DESCRIBE = "Whether the {target} are {action}?", "Please describe the {target}."
#: The paper's instruction templates, by name.
TEMPLATES = {
    "person-holding-objects": _ASK.format(target="person", action="holding objects"),
    "hand-touching-head": _ASK.format(target="hand", action="touching head"),
    "hand-touching-foot": _ASK.format(target="hand", action="touching foot"),
    "describe-person": _DESCRIBE.format(target="person"),
    "describe-hand": _DESCRIBE.format(target="hand"),
    "describe-foot": _DESCRIBE.format(target="foot"),
}


def drop_incomplete_line(path: Path) -> bool:
    """Truncate ``path`` after its last newline (a run stopped mid-write); True if something was dropped."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end == len(data):
        return False
    with path.open("r+b") as file:
        file.truncate(end)
    return True


def answered(path: Path, question: str) -> set[str]:
    """Names already answered in ``path`` (none if it does not exist); answers to another question are an error."""
    if not path.is_file():
        return set()
    if drop_incomplete_line(path):
        print(f"{path}: dropped an incomplete last line, its sample is asked again", file=sys.stderr)
    if not read_text(path).strip():
        return set()
    rows = read_answers(path)
    others = sorted({str(row.get("question")) for row in rows} - {question})
    if others:
        raise InputError(f"{path} holds answers to another question ({others[0]!r}): ask that one or use another --out")
    return {row["name"] for row in rows}


def open_strip(folder: Path, name: str) -> Image.Image:
    """The RGB image ``<folder>/<name>.jpg``; missing or unreadable is an ``InputError`` saying so."""
    path = folder / f"{name}.jpg"
    if not path.is_file():
        raise InputError(f"{path}: strip not found")
    return read_strip(path, lambda image: image.convert("RGB"))


def answer_all(answerer: VisualQuestionAnswerer, folder: Path, names: list[str], question: str, out: Path,
               batch_size: int) -> dict[str, str]:
    """Append ``{"name", "question", "answer"}`` lines for ``names`` to ``out``; return the failures (name: reason)."""
    failures: dict[str, str] = {}
    with out.open("a", encoding="utf-8") as file, tqdm(total=len(names), desc="answers", disable=None) as bar:
        for start in range(0, len(names), batch_size):
            chunk, batch, images = names[start:start + batch_size], [], []
            for name in chunk:
                try:
                    images.append(open_strip(folder, name))
                    batch.append(name)
                except InputError as err:
                    failures[name] = str(err)
                    bar.write(f"{name}: {err}", file=sys.stderr)
            for name, answer in zip(batch, answerer.answer(images, [question] * len(images))):
                row = {"name": name, "question": question, "answer": answer}
                file.write(json.dumps(row, ensure_ascii=False) + "\n")
            file.flush()
            bar.update(len(chunk))
    return failures


@command
def main(argv: list[str] | None = None) -> int:
    templates = "; ".join(f"{name}: {text!r}" for name, text in TEMPLATES.items())
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, help="folder of <name>.jpg strips")
    parser.add_argument("--names", required=True, nargs="+", help="names file(s), one sample name a line")
    parser.add_argument("--model", required=True, help="Hugging Face Hub id or local model folder")
    parser.add_argument("--backend", choices=tuple(BACKENDS), default="blip",
                        help="blip: BlipForQuestionAnswering; image-text-to-text: a chat VLM (LLaVA, Qwen2-VL, ...)")
    ask = parser.add_mutually_exclusive_group()
    ask.add_argument("--question", default=QUESTION, help=f"the question to ask (default: {QUESTION!r})")
    ask.add_argument("--template", choices=tuple(TEMPLATES), help=f"one of the paper's questions: {templates}")
    parser.add_argument("--out", required=True, help="answers .jsonl file, appended to (resumes a stopped run)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=20, help="longest answer, in tokens")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--local-files-only", action="store_true", help="never contact the Hub (cached or local model)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="let the model folder / Hub repo run its own Python code (off unless given)")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.max_new_tokens < 1:
        raise InputError("--batch-size and --max-new-tokens must be at least 1")
    question = TEMPLATES[args.template] if args.template else args.question.strip()
    if not question:
        raise InputError("--question is empty")
    images, out = Path(args.images), Path(args.out)
    if not images.is_dir():
        raise InputError(f"strips folder not found: {images}")
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: expected an answers .jsonl file")
    names = read_names(args.names)
    done = answered(out, question)
    todo = [name for name in names if name not in done]
    errors = out.with_name(out.name + ".errors.txt")
    failures = {}
    if todo:
        answerer = load_answerer(args.model, args.backend, args.device, args.max_new_tokens, args.local_files_only,
                                 args.trust_remote_code)
        out.parent.mkdir(parents=True, exist_ok=True)
        failures = answer_all(answerer, images, todo, question, out, args.batch_size)
    if failures:
        write_text_atomic(errors, "".join(f"{name}\t{reason}\n" for name, reason in failures.items()))
    else:
        errors.unlink(missing_ok=True)
    print(f"answered {len(todo) - len(failures)}, already there {len(names) - len(todo)}, failed {len(failures)}"
          f" -> {out}" + (f" (failures listed in {errors})" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
