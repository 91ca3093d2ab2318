"""Ask a vision-language model questions about every sample's temporal RGB strip; store answers and text features.

    python -m llm_features.answer_questions --images data/ntu120/rgb_strips \\
        --names data/ntu120/xsub/train_names.txt --model Salesforce/blip-vqa-capfilt-large \\
        --features token-ids --template person-holding-objects hand-touching-head --out data/ntu120/features/blip

``--features token-ids`` with BLIP makes the ids as the public MMCL script does (``PUBLIC_BLIP``): the BLIP VQA
capfilt-large weights it used, BLIP's own VQA inference (3 beams, answers of at most 10 tokens counting the
[DEC] start token), the whole strip squashed to 480 × 480 (bicubic, CLIP normalisation), float32. Other kinds
and backends decode greedily (``GREEDY``); options given override either. The settings go into each store's
``meta.json``: a run folder resumes, and ``merge_features`` joins shards, only with the same settings.

With a folder ``--out``, each prompt gets ``<out>/<prompt>/``, a text feature store (``feeders.feature_store``)
of the ``--features`` kind (``llm_features.kinds``) once every name is answered (``llm_features.prompt_run``).
With an ``--out`` file ending in ``.jsonl`` (one question), only the answers are written, one JSON line per
sample, ``{"name", "question", "answer"}``, the input of ``llm_features.encode_answers``.
Answers are appended and flushed batch by batch, so a stopped run resumes where it left off: names already
answered are skipped and a cut-off last line is dropped and redone; answers to another question are an error.
``--shard i/n`` answers every n-th name from the i-th (0-based); ``llm_features.merge_features`` joins the
shards' stores. A strip that is missing or unreadable is reported, listed with the reason in the errors file
(``<out>.errors.txt`` or ``<out>/errors.txt``, rewritten by each run), and retried on the next run.
Exit status: 0 when every name is answered, 1 when some strips failed, 2 on bad arguments or input.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from engine.errors import InputError, command
from engine.fileio import write_text_atomic
from feeders.multimodal import read_strip
from llm_features.kinds import KINDS, POOLS, pooled_hidden, token_ids
from llm_features.names import read_names
from llm_features.prompt_run import PromptFolder, PromptRun
from llm_features.vlm import BACKENDS, Generation, VisualQuestionAnswerer, load_answerer

#: The default instruction (docs/method.md §4).
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


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
#: The public MMCL script's BLIP VQA inference (token-ids with BLIP): 3 beams; BLIP's max_length 10 and min_length 1
#: count the decoder's [DEC] start token, hence 9 and 0 new tokens; 480 × 480 images; float32 weights.
PUBLIC_BLIP = {"num_beams": 3, "max_new_tokens": 9, "min_new_tokens": 0, "image_size": 480, "dtype": "float32"}
#: Everything else: greedy, up to 20 new tokens, the processor's images, the device's default dtype.
GREEDY = {"num_beams": 1, "max_new_tokens": 20, "min_new_tokens": 0, "image_size": None, "dtype": None}


def open_strip(folder: Path, name: str) -> Image.Image:
    """The RGB image ``<folder>/<name>.jpg``; missing or unreadable is an ``InputError`` saying so."""
    path = folder / f"{name}.jpg"
    if not path.is_file():
        raise InputError(f"{path}: strip not found")
    return read_strip(path, lambda image: image.convert("RGB"))


def by_size(folder: Path, names: list[str]) -> list[str]:
    """``names`` ordered by their strip's size (read from the file header; missing or unreadable last), so that a
    batch holds images of one size: prompts of one length, no padding, with dynamic-resolution VLMs too."""
    def size(name: str) -> tuple[float, float]:
        try:
            with Image.open(folder / f"{name}.jpg") as image:
                return image.size
        except (OSError, ValueError, Image.DecompressionBombError):
            return (float("inf"), float("inf"))

    return sorted(names, key=size)


def answer_all(answerer: VisualQuestionAnswerer, folder: Path, names: list[str], question: str, run: PromptRun,
               batch_size: int, featurize: Callable[[Generation], np.ndarray] | None = None,
               layer: int | None = None, desc: str = "answers") -> dict[str, str]:
    """Answer ``question`` about each name's strip into ``run`` (with ``featurize``'d features of each batch's
    generation, ``layer``'s hidden states included); return the failures (name: reason)."""
    failures: dict[str, str] = {}
    # samples/s and ETA; in a log file (cluster jobs) one update a minute
    interval = 0.1 if sys.stderr.isatty() else 60
    with tqdm(total=len(names), desc=desc, unit="sample", mininterval=interval, smoothing=0.1) as bar:
        for start in range(0, len(names), batch_size):
            chunk, batch, images = names[start:start + batch_size], [], []
            for name in chunk:
                try:
                    images.append(open_strip(folder, name))
                    batch.append(name)
                except InputError as err:
                    failures[name] = str(err)
                    bar.write(f"{name}: {err}", file=sys.stderr)
            if batch:
                generation = answerer.generate(images, [question] * len(images), layer)
                run.append(batch, generation.answers, featurize(generation) if featurize else None)
            bar.update(len(chunk))
    return failures


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` → (i, n) with 0 <= i < n."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= index < count:
        raise InputError(f"--shard {text!r}: expected 0 <= i < n")
    return index, count


def prompts(args: argparse.Namespace) -> dict[str, str]:
    """The questions to ask, by the name of their output folder."""
    if args.template:
        return {name: TEMPLATES[name] for name in args.template}
    question = args.question.strip()
    if not question:
        raise InputError("--question is empty")
    return {"default" if question == QUESTION else "question": question}


def featurizer(args: argparse.Namespace, answerer: VisualQuestionAnswerer
               ) -> tuple[Callable[[Generation], np.ndarray] | None, int | None]:
    """What makes a batch's features during generation (none for clip-text), and the hidden layer it needs."""
    if args.features == "hidden":
        return lambda generation: pooled_hidden(generation, args.pool).astype(args.store_dtype), args.layer
    if args.features == "token-ids":
        return partial(token_ids, k=args.k, pad_id=answerer.pad_id), None
    return None, None


def clip_text_encoder(args: argparse.Namespace) -> Callable[[list[str]], np.ndarray]:
    """The frozen open_clip text tower of ``--text-model`` / ``--text-pretrained`` as an answers → features map."""
    from llm_features.encode_answers import encode
    from llm_features.text_encoder import FrozenClipTextEncoder

    pretrained = None if args.text_pretrained.lower() == "none" else args.text_pretrained
    torch.manual_seed(0)  # random initialisation (pretrained none) is the same in every run and shard
    encoder = FrozenClipTextEncoder(args.text_model, pretrained).to(answerer_device(args))
    return partial(encode, encoder, batch_size=256)


def answerer_device(args: argparse.Namespace) -> str:
    return args.device or ("cuda" if torch.cuda.is_available() else "cpu")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    templates = "; ".join(f"{name}: {text!r}" for name, text in TEMPLATES.items())
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, help="folder of <name>.jpg strips")
    parser.add_argument("--names", required=True, nargs="+", help="names file(s), one sample name a line")
    parser.add_argument("--model", required=True, help="Hugging Face Hub id or local model folder")
    parser.add_argument("--backend", choices=tuple(BACKENDS), default="blip",
                        help="blip: BlipForQuestionAnswering; image-text-to-text: a chat VLM such as LLaVA or Qwen2-VL "
                             "(default: %(default)s)")
    ask = parser.add_mutually_exclusive_group()
    ask.add_argument("--question", default=QUESTION, help=f"the question to ask (default: {QUESTION!r})")
    ask.add_argument("--template", nargs="+", choices=tuple(TEMPLATES),
                     help=f"one or more of the paper's questions, each into <out>/<name>/: {templates} "
                          "(default: none, --question is asked)")
    parser.add_argument("--out", required=True,
                        help="run folder (a store per prompt), or an answers .jsonl file (answers only, one question)")
    parser.add_argument("--features", choices=KINDS, default="clip-text",
                        help="clip-text: answers embedded by an open_clip text tower; hidden: the VLM's pooled hidden "
                             "states; token-ids: the first --k answer token ids, the public FRM's input "
                             "(default: %(default)s)")
    parser.add_argument("--layer", type=int, default=-1,
                        help="hidden: which layer, -1 the last, 0 the embeddings (default: %(default)s)")
    parser.add_argument("--pool", choices=POOLS, default="mean",
                        help="hidden: mean over the answer, or its last token (default: %(default)s)")
    parser.add_argument("--store-dtype", choices=("float16", "float32"), default="float16",
                        help="hidden: dtype on disk; token-ids and clip-text are float32 (default: %(default)s)")
    parser.add_argument("--k", type=int, default=3,
                        help="token-ids: how many ids, padded with the pad id (default: %(default)s)")
    parser.add_argument("--text-model", default="ViT-B-32",
                        help="clip-text: open_clip model name (default: %(default)s)")
    parser.add_argument("--text-pretrained", default="openai",
                        help="clip-text: open_clip tag, local file, or 'none' (default: %(default)s)")
    parser.add_argument("--shard", default="0/1",
                        help="i/n: answer only every n-th name from the i-th, 0-based (default: %(default)s: all)")
    parser.add_argument("--batch-size", type=int, default=8, help="strips per generation call (default: %(default)s)")
    public = "with --features token-ids and --backend blip (the public MMCL script's), else"
    parser.add_argument("--num-beams", type=int,
                        help=f"beam search width, 1 = greedy (default: {PUBLIC_BLIP['num_beams']} {public} "
                             f"{GREEDY['num_beams']}; --features hidden needs 1)")
    parser.add_argument("--max-new-tokens", type=int,
                        help=f"longest answer, in generated tokens (default: {PUBLIC_BLIP['max_new_tokens']} {public} "
                             f"{GREEDY['max_new_tokens']}; BLIP's max_length 10 counts its [DEC] start token)")
    parser.add_argument("--min-new-tokens", type=int,
                        help="shortest answer, in generated tokens before the end token may come (default: "
                             f"{GREEDY['min_new_tokens']}; BLIP's min_length 1 is its [DEC] start token alone)")
    parser.add_argument("--image-size", type=int, metavar="N",
                        help="blip: squash the whole strip to N × N pixels (bicubic, CLIP mean and std), as "
                             f"BLIP's own code does (default: {PUBLIC_BLIP['image_size']} {public} the processor's "
                             "own resizing)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--dtype", choices=tuple(DTYPES),
                        help=f"model weights (default: {PUBLIC_BLIP['dtype']} {public} float16 on CUDA and float32 "
                             "on the CPU)")
    parser.add_argument("--local-files-only", action="store_true", help="never contact the Hub (cached or local model)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="let the model folder / Hub repo run its own Python code (off unless given)")
    args = parser.parse_args(argv)
    recipe = PUBLIC_BLIP if (args.features, args.backend) == ("token-ids", "blip") else GREEDY
    for key, value in recipe.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    counts = {"--batch-size": args.batch_size, "--max-new-tokens": args.max_new_tokens, "--k": args.k,
              "--num-beams": args.num_beams, "--image-size": 1 if args.image_size is None else args.image_size}
    for option, count in counts.items():
        if count < 1:
            raise InputError(f"{option} must be at least 1, not {count}")
    if not 0 <= args.min_new_tokens <= args.max_new_tokens:
        raise InputError("--min-new-tokens must be between 0 and --max-new-tokens")
    if args.features == "hidden" and args.num_beams > 1:
        raise InputError(f"--features hidden needs greedy decoding (--num-beams 1), not {args.num_beams} beams")
    if args.image_size is not None and args.backend != "blip":
        raise InputError(f"--image-size: the {args.backend} backend resizes as its processor does")
    return args


@command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    questions, (shard, shards) = prompts(args), parse_shard(args.shard)
    images, out = Path(args.images), Path(args.out)
    if not images.is_dir():
        raise InputError(f"strips folder not found: {images}")
    one_file = out.suffix == ".jsonl"
    if one_file and (args.features != "clip-text" or len(questions) > 1):
        raise InputError(f"--out {out}: an answers file holds one question's answers only; give a folder for "
                         "several templates or --features hidden / token-ids")
    if (one_file and out.is_dir()) or (not one_file and out.is_file()):
        raise InputError(f"--out {out}: expected {'an answers .jsonl file' if one_file else 'a folder'}")
    names = read_names(args.names)[shard::shards]
    if not names:
        raise InputError(f"--shard {args.shard}: no names to answer in {', '.join(args.names)}")
    answerer = encoder = None
    failures: dict[str, str] = {}
    answered = already = 0
    for prompt, question in questions.items():
        folder = None if one_file else PromptFolder(out / prompt, question, meta(args, prompt))
        run = PromptRun(out, question) if one_file else folder.run
        todo = [name for name in names if name not in run.done] if one_file else folder.todo(names)
        already += len(names) - len(todo)
        if todo:
            if answerer is None:
                answerer = load_answerer(args.model, args.backend, args.device, args.max_new_tokens,
                                         args.local_files_only, args.trust_remote_code,
                                         DTYPES[args.dtype] if args.dtype else None, args.num_beams,
                                         args.min_new_tokens, args.image_size)
            featurize, layer = featurizer(args, answerer)
            failed = answer_all(answerer, images, by_size(images, todo), question, run, args.batch_size, featurize,
                                layer, prompt)
            failures.update(failed)
            answered += len(todo) - len(failed)
        if folder is not None and not folder.complete and folder.ready(names):
            if args.features == "clip-text" and encoder is None:
                encoder = clip_text_encoder(args)
            folder.finish(names, encoder)
    errors = out.with_name(out.name + ".errors.txt") if one_file else out / "errors.txt"
    if failures:
        write_text_atomic(errors, "".join(f"{name}\t{reason}\n" for name, reason in failures.items()))
    else:
        errors.unlink(missing_ok=True)
    print(f"answered {answered}, already there {already}, failed {len(failures)}"
          f" -> {out}" + (f" (failures listed in {errors})" if failures else ""))
    return 1 if failures else 0


def meta(args: argparse.Namespace, prompt: str) -> dict[str, Any]:
    """How a prompt's features are made, for its store's ``meta.json`` (``merge_features`` compares them)."""
    made = {"features": args.features, "prompt": prompt, "model": args.model, "backend": args.backend,
            "num_beams": args.num_beams, "max_new_tokens": args.max_new_tokens,
            "min_new_tokens": args.min_new_tokens, "image_size": args.image_size}
    if args.features == "hidden":
        made.update(layer=args.layer, pool=args.pool)
    elif args.features == "token-ids":
        made.update(k=args.k)
    else:
        made.update(encoder={"type": "open_clip_text", "model_name": args.text_model,
                             "pretrained": args.text_pretrained})
    return made


if __name__ == "__main__":
    sys.exit(main())
