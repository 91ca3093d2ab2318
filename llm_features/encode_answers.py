"""Turn the LLM's answers into a text feature store (FRM input) with a frozen open_clip text tower.

    python -m llm_features.encode_answers --answers data/ntu120/answers.jsonl \\
        --model ViT-B-32 --pretrained openai --out data/ntu120/features/text_vitb32

The answers file has one JSON object per line: ``{"name": ..., "question": ..., "answer": ...}``. The store
keeps the answers beside the features (``answers.jsonl``), so what the LLM said stays inspectable.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine.errors import InputError, command
from engine.fileio import read_text
from feeders.feature_store import write_feature_store
from llm_features.text_encoder import FrozenClipTextEncoder


def read_answers(path: Path) -> list[dict[str, str]]:
    """The rows of an answers file, checked: valid JSON with name and answer, names unique."""
    if not path.is_file():
        raise InputError(f"answers file not found: {path}")
    rows, seen = [], set()
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as err:
            raise InputError(f"{path}:{number}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("name"), str) or not isinstance(row.get("answer"), str):
            raise InputError(f"{path}:{number}: expected an object with string 'name' and 'answer'")
        if row["name"] in seen:
            raise InputError(f"{path}:{number}: sample {row['name']!r} appears twice")
        seen.add(row["name"])
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no answers")
    return rows


def encode(encoder: FrozenClipTextEncoder, texts: list[str], batch_size: int) -> np.ndarray:
    """(len(texts), D) float32 features; each distinct text is encoded once."""
    unique = list(dict.fromkeys(texts))
    parts = [encoder(unique[i:i + batch_size]).cpu().numpy()
             for i in tqdm(range(0, len(unique), batch_size), desc="text features", disable=None)]
    table = dict(zip(unique, np.concatenate(parts)))
    return np.stack([table[text] for text in texts]).astype(np.float32)


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--answers", required=True, nargs="+", help="answers .jsonl file(s)")
    parser.add_argument("--out", required=True, help="feature store folder to write")
    parser.add_argument("--model", default="ViT-B-32", help="open_clip model name (default: %(default)s)")
    parser.add_argument("--pretrained", default="openai",
                        help="open_clip tag, local checkpoint file, or 'none' (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=256, help="answers per forward pass (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random initialisation of --pretrained none (default: %(default)s)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda when available, else cpu)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if (out / "meta.json").exists():
        raise InputError(f"{out} already holds a feature store: choose another --out or delete it")
    rows = [row for path in args.answers for row in read_answers(Path(path))]
    pretrained = None if args.pretrained.lower() == "none" else args.pretrained
    torch.manual_seed(args.seed)
    encoder = FrozenClipTextEncoder(args.model, pretrained).to(args.device)
    features = encode(encoder, [row["answer"] for row in rows], args.batch_size)
    questions = sorted({row.get("question", "") for row in rows})
    write_feature_store(out, features, [row["name"] for row in rows],
                        {"kind": "text", "encoder": encoder.spec, "questions": questions}, answers=rows)
    print(f"wrote {len(rows)} x {features.shape[1]} text features to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
