"""Command: predict the actions of raw NTU RGB+D ``.skeleton`` files with a trained skeleton model.

    python -m tools.infer --weights work_dir/.../best.pt --skeletons A.skeleton [B.skeleton ...]
                          [--config CONFIG.yaml] [--topk 5] [--out predictions.jsonl] [config overrides]

Each file goes through the NTU pipeline (parse, denoise, centre: tools/prepare_ntu.py; a single actor is
copied into the second slot for a 120-class model, as NTU120's data is, else left empty) and then through
the config's test feeder (its crop, window, bone / motion stream) exactly as in ``--phase test``: the
samples are written to a temporary prepared folder that the feeder reads. The model is the config's
backbone with the weights of ``--weights`` (our checkpoints, exported skeleton weights or public CTR-GCN
/ MMCL files); ``--config`` defaults to the config stored in our checkpoints, and any config key can be
overridden as for main_mmcl.py (e.g. ``--device 0``). Prints the top-k actions per file; ``--out`` also
writes them as JSON lines. A file that cannot be read is reported on one line and the others go on; the
exit status is then 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from engine.checkpoint import CHECKPOINT_FORMAT, extract_state_dict, load_state, read_torch_file
from engine.config import DEFAULTS, resolve_config
from engine.data import build_dataset
from engine.distributed import setup_runtime, teardown_runtime, visible_devices
from engine.errors import InputError, command
from engine.fileio import write_text_atomic
from engine.trainer import build_model, predict, wrap_for_devices
from feeders.class_names import ntu_class_names
from feeders.prepared import write_prepared_split
from tools.ntu_layout import person_slots
from tools.prepare_ntu import prepare_sample

SPLIT = "test"
#: The NTU RGB+D 120 class count: its data copies a single actor into the second person slot.
NTU120_CLASSES = 120


def run_config(weights_content: Any, weights: str, config_path: str | None, overrides: list[str]) -> dict[str, Any]:
    """The config to infer with: ``--config``, else the one stored in our checkpoint; then the overrides."""
    if config_path is not None:
        return resolve_config(["--config", config_path, *overrides])
    ours = isinstance(weights_content, dict) and weights_content.get("format") == CHECKPOINT_FORMAT
    stored = weights_content.get("config") if ours else None
    if not isinstance(stored, dict):
        raise InputError(f"{weights}: holds no config; pass --config (the YAML the model was trained with)")
    with tempfile.TemporaryDirectory(prefix="mmcl-infer-") as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(yaml.safe_dump({key: value for key, value in stored.items() if key in DEFAULTS}))
        return resolve_config(["--config", str(path), *overrides])


def read_samples(paths: Sequence[str | Path], duplicate_single: bool) -> tuple[list[str], list[np.ndarray], list[str]]:
    """Names and (3, T, 25, 2) samples of the readable files, and one ``file: reason`` line per other file."""
    names, samples, failures = [], [], []
    for path in map(Path, paths):
        try:
            joints, colours = prepare_sample(path)
        except InputError as error:
            failures.append(f"{path}: {error}" if str(path) not in str(error) else str(error))
            continue
        except OSError as error:
            failures.append(f"{path}: cannot read ({error.strerror})")
            continue
        names.append(path.name.removesuffix(".skeleton"))
        samples.append(person_slots(joints, colours, len(joints), duplicate_single)[0])
    return names, samples, failures


def stack(samples: list[np.ndarray]) -> np.ndarray:
    """(N, 3, T_max, 25, 2): the samples zero-padded in time."""
    length = max(sample.shape[1] for sample in samples)
    data = np.zeros((len(samples), 3, length, *samples[0].shape[2:]), dtype=np.float32)
    for row, sample in enumerate(samples):
        data[row, :, : sample.shape[1]] = sample
    return data


def infer(config: dict[str, Any], weights_content: Any, weights: str, names: list[str], samples: list[np.ndarray]
          ) -> np.ndarray:
    """Logits (N, K) of the samples, scored by the config's test feeder and backbone."""
    if config["feeder"] not in ("ntu", "feeders.feeder_ntu.Feeder"):
        raise InputError(f"feeder {config['feeder']!r}: inference on .skeleton files needs an NTU-layout model")
    runtime = setup_runtime(*visible_devices(config["device"], config["device_on_command_line"]))
    try:
        with tempfile.TemporaryDirectory(prefix="mmcl-infer-") as folder:
            write_prepared_split(folder, SPLIT, stack(samples), np.zeros(len(names), np.int64), names)
            feeder_args = {**config["test_feeder_args"], "data_path": folder, "split": SPLIT, "debug": False}
            feeder_args = {k: v for k, v in feeder_args.items() if k not in ("names_file", "exclude_names_file")}
            dataset = build_dataset({**config, "test_feeder_args": feeder_args}, SPLIT)
            model = build_model(config, None)
            load_state(model, extract_state_dict(weights_content, weights), weights, config["ignore_weights"])
            indices, scores = predict(wrap_for_devices(model, runtime), dataset, config, runtime, desc="infer")
        return scores[np.argsort(indices)]
    finally:
        teardown_runtime()


def top_predictions(scores: np.ndarray, topk: int) -> list[list[dict[str, Any]]]:
    """Per sample, the ``topk`` classes ranked by logit (probabilities underflow to ties), with their softmax
    probability and (NTU) name."""
    logits = scores.astype(np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    names = ntu_class_names(scores.shape[1])
    result = []
    for row, probability in zip(logits, probabilities):
        order = np.argsort(-row, kind="stable")[:topk]
        result.append([{"class": int(c), "name": names[c] if names else None, "probability": float(probability[c])}
                       for c in order])
    return result


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="checkpoint or skeleton weights file")
    parser.add_argument("--skeletons", nargs="+", required=True, help="NTU RGB+D .skeleton files")
    parser.add_argument("--config", help="the model's YAML config (default: the one stored in --weights)")
    parser.add_argument("--topk", type=int, default=5, help="actions to show per file (default 5)")
    parser.add_argument("--out", type=Path,
                        help="also write the predictions as JSON lines to this file (default: printed only)")
    args, overrides = parser.parse_known_args(argv)
    if args.topk < 1:
        raise InputError(f"--topk must be at least 1, got {args.topk}")
    content = read_torch_file(args.weights)
    config = run_config(content, args.weights, args.config, overrides)
    num_class = config["model_args"].get("num_class")
    names, samples, failures = read_samples(args.skeletons, duplicate_single=num_class == NTU120_CLASSES)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    if not samples:
        return 2
    predictions = top_predictions(infer(config, content, args.weights, names, samples), args.topk)
    for name, top in zip(names, predictions):
        shown = ", ".join(f"{p['name'] or p['class']} {100 * p['probability']:.1f}%" for p in top)
        print(f"{name}: {shown}")
    if args.out is not None:
        lines = [json.dumps({"name": name, "top": top}) for name, top in zip(names, predictions)]
        write_text_atomic(args.out, "".join(f"{line}\n" for line in lines))
    return 2 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
