"""Run configuration: defaults, YAML file and command-line overrides merged into one plain dict.

Two stages, as in timm's ``train.py``: ``--config`` is read first, its keys become the defaults of the full
parser, and any key can then be overridden on the command line (``--base-lr 0.05``, ``--step 30 40``,
``--train-feeder-args window_size=32 debug=true``). Values given on the command line are parsed as YAML
scalars, so ``true``, ``0.1`` and ``[35, 55]`` get their natural types. Unknown keys are an error naming
the key, in the file and on the command line alike.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from engine.errors import InputError
from engine.fileio import read_text

#: Every key a config may hold, with its default. The public CTR-GCN / MMCL keys keep their meaning.
DEFAULTS: dict[str, Any] = {
    "work_dir": "./work_dir/temp",
    "phase": "train",
    "save_score": True,
    "seed": 1,
    "log_interval": 100,
    "save_interval": 1,
    "save_epoch": 30,
    "eval_interval": 1,  # the public CTR-GCN / MMCL scripts evaluate after every epoch
    "show_topk": [1, 5],
    "feeder": "ntu",
    "num_worker": 4,
    "train_feeder_args": {},
    "test_feeder_args": {},
    "model": "ctrgcn",
    "model_args": {},
    "mmcl": {},
    "weights": None,
    "ignore_weights": [],
    "refine_text_features": None,
    "base_lr": 0.1,
    "step": [35, 55],
    "device": [0],
    "parallel": "ddp",  # several --device ids: one spawned DDP process each (ddp) or DataParallel (dp)
    "optimizer": "SGD",
    "nesterov": True,
    "batch_size": 64,
    "test_batch_size": 64,
    "start_epoch": 0,
    "num_epoch": 65,
    "weight_decay": 0.0004,
    "lr_decay_rate": 0.1,
    "lr_scheduler": "step",
    "lr_ratio": 0.001,
    "warm_up_epoch": 5,
    "resume": None,
    "overwrite": False,
    "amp": False,
    "tf32": False,  # CUDA: TF32 for float32 matrix products and cuDNN convolutions (model.kernels.tf32)
    "deterministic": False,
    "plots": True,  # evaluation pictures (last evaluation, --phase test) and training curves
    "skip_nonfinite": 0,  # batches with a NaN / infinite loss to skip (logged) before the run stops
}

#: What each key does, for ``main_mmcl.py --help`` (``build_parser`` adds its default).
HELP: dict[str, str] = {
    "work_dir": "folder of the run's files: config, log, checkpoints, scores, results",
    "phase": "train, or test the --weights",
    "save_score": "write the score files and the right / wrong lists of each kept evaluation",
    "seed": "seed of the run: initialisation, sample order, augmentation",
    "log_interval": "training steps between two logging steps, the only ones that wait for the GPU: TensorBoard "
                    "records of the losses, the non-finite check, and under DDP the ranks' agreement on a stop "
                    "request",
    "save_interval": "write the bare backbone weights runs-{epoch}-{step}.pt every this many epochs",
    "save_epoch": "first epoch that may write runs-{epoch}-{step}.pt",
    "eval_interval": "evaluate on the test split every this many epochs and after the last",
    "show_topk": "top-k accuracies to report",
    "feeder": "dataset: ntu, ucla or the dotted path of your own class",
    "num_worker": "DataLoader worker processes, capped at the CPU cores",
    "train_feeder_args": "arguments of the training feeder, e.g. data_path=... window_size=64",
    "test_feeder_args": "arguments of the test feeder",
    "model": "backbone: ctrgcn, tdgcn, hdgcn or the dotted path of your own class",
    "model_args": "arguments of the backbone, e.g. num_class=60",
    "mmcl": "the co-learning helpers: fam=true, frm=true, their weights and feature stores; see docs/method.md "
            "and docs/helpers.md",
    "weights": "weights to test (--phase test) or to start training from: our checkpoints, exported skeleton "
               "weights, public CTR-GCN or MMCL files",
    "ignore_weights": "key prefixes of --weights not to load; the rest then loads non-strictly",
    "refine_text_features": "--phase test: a text feature store; the scores refined with it by the checkpoint's "
                            "FRM are written too, as test_<W>_refine_*",
    "base_lr": "learning rate after the warm-up",
    "step": "epochs at which the step schedule multiplies the learning rate by lr_decay_rate",
    "device": "CUDA ids, one DDP process each (see --parallel), or cpu; the CPU when there is no CUDA; "
              "ignored under torchrun",
    "parallel": "with several --device ids: ddp, a process each, or dp, DataParallel in one process",
    "optimizer": "SGD with momentum 0.9, Adam or AdamW",
    "nesterov": "Nesterov momentum, for SGD",
    "batch_size": "training batch, split across the --device processes; per process under torchrun",
    "test_batch_size": "evaluation batch",
    "start_epoch": "first epoch to train, 0-based; a --resume run starts where its checkpoint stopped",
    "num_epoch": "epochs to train",
    "weight_decay": "weight decay of the optimizer",
    "lr_decay_rate": "factor of the learning rate at each --step epoch",
    "lr_scheduler": "step: per epoch, as CTR-GCN; cosine: per iteration, as HD-GCN",
    "lr_ratio": "cosine schedule: its final learning rate as a fraction of base_lr",
    "warm_up_epoch": "epochs of linear learning-rate warm-up",
    "resume": "continue a killed run from this checkpoint; 'auto' or no value: the work_dir's last one",
    "overwrite": "start afresh in a work_dir that holds an earlier run, replacing its files",
    "amp": "mixed precision: float16 (with loss scaling) or bfloat16 autocast; true: float16 on CUDA, bfloat16 on "
           "the CPU; false: float32",
    "tf32": "CUDA: TF32 for float32 matrix products and cuDNN convolutions (faster, 10-bit mantissa); false: "
            "full float32 for both; no effect on the CPU (docs/gpu.md)",
    "deterministic": "use torch's deterministic algorithms, warning where an operation has none",
    "plots": "draw the evaluation pictures and the training curves",
    "skip_nonfinite": "batches with a NaN / infinite loss (or gradient) to skip, each logged, before the run stops",
}

#: What an unset (None or empty) key means, shown as its default.
_UNSET = {
    "weights": "none: training starts from a random initialisation",
    "refine_text_features": "none: no refined scores",
    "resume": "none: start afresh",
}

#: The autocast dtypes ``amp`` may name (``true`` picks float16 on CUDA, bfloat16 on the CPU).
AMP_DTYPES = ("float16", "bfloat16")

#: Keys of the public CTR-GCN / MMCL configs that have no effect here (logging is always on, file names are
#: fixed). They are accepted so those configs load, and the run log says they were ignored.
IGNORED_PUBLIC_KEYS = ("model_saved_name", "print_log", "config")

_LIST_KEYS = ("show_topk", "step", "device", "ignore_weights")
_DICT_KEYS = ("train_feeder_args", "test_feeder_args", "model_args", "mmcl")


def _yaml_value(text: str) -> Any:
    """Parse one command-line value as a YAML scalar (``'0.1'`` → 0.1, ``'true'`` → True, ``'x'`` → 'x')."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _key_value(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` for dict-valued options."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, _yaml_value(value)


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config with ``yaml.safe_load``; any problem is an ``InputError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(read_text(path))
    except (yaml.YAMLError, RecursionError) as err:
        raise InputError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InputError(f"{path}: a config must be a mapping of keys to values")
    return loaded


def check_keys(config: dict[str, Any], source: str) -> None:
    """Reject keys that are neither known nor public-but-ignored, naming the first unknown one."""
    known = set(DEFAULTS) | set(IGNORED_PUBLIC_KEYS)
    unknown = [key for key in config if key not in known]
    if unknown:
        raise InputError(f"{source}: unknown config key {unknown[0]!r}" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))


def _shown(value: Any) -> str:
    """A default as typed on the command line: ``true`` / ``false``, list items separated by spaces, a mapping
    in YAML's flow style."""
    if isinstance(value, dict):
        return yaml.safe_dump(value, default_flow_style=True, width=math.inf).strip()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return " ".join(map(_shown, value))
    return str(value)


def _help(key: str, value: Any) -> str | None:
    """The help of option ``key`` whose default is ``value`` (None for a key without a ``HELP`` entry)."""
    if key not in HELP:
        return None
    if key in _DICT_KEYS:
        return f"{HELP[key]}; KEY=VALUE pairs that set single entries, the option may repeat " \
               f"(default: {_shown(value) if value else 'none'})".replace("%", "%%")
    default = _shown(value) if value not in (None, [], "") else _UNSET.get(key, "none")
    return f"{HELP[key]} (default: {default})".replace("%", "%%")


def build_parser(defaults: dict[str, Any]) -> argparse.ArgumentParser:
    """The full parser: one option per config key, defaults taken from ``defaults``."""
    parser = argparse.ArgumentParser(
        description="Train or test a skeleton action recogniser (MMCL / CTR-GCN family). Every config key is an "
                    "option; the defaults shown are the --config file's values, else the built-in ones.",
    )
    parser.add_argument("--config", help="YAML config file (default: none: the built-in defaults)")
    for key, default in DEFAULTS.items():
        flags = sorted({f"--{key}", f"--{key.replace('_', '-')}"})
        value = defaults.get(key, default)
        helped = _help(key, value)
        if key == "resume":
            parser.add_argument(*flags, dest=key, nargs="?", const="auto", default=value, help=helped)
        elif key == "overwrite":
            parser.add_argument(*flags, dest=key, nargs="?", const=True, type=_yaml_value, default=value,
                                help=helped)
        elif key in _DICT_KEYS:
            parser.add_argument(*flags, dest=key, nargs="+", type=_key_value, default=None, metavar="KEY=VALUE",
                                action="extend", help=helped)
        elif key in _LIST_KEYS:
            parser.add_argument(*flags, dest=key, nargs="*", type=_yaml_value, default=value, help=helped)
        else:
            parser.add_argument(*flags, dest=key, type=_yaml_value, default=value, help=helped)
    return parser


def resolve_config(argv: list[str]) -> dict[str, Any]:
    """Merge defaults, the ``--config`` file and command-line overrides into the run's config."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--device", nargs="*")  # given on the command line: kept as asked (engine.distributed)
    known, _ = pre.parse_known_args(argv)
    file_config = read_config_file(known.config) if known.config else {}
    check_keys(file_config, str(known.config))
    merged = copy.deepcopy(DEFAULTS)
    merged.update({key: value for key, value in file_config.items() if key in DEFAULTS})

    parser = build_parser(merged)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        option = next((item for item in unknown if item.startswith("-")), unknown[0])
        raise InputError(f"command line: unknown option {option!r}")
    resolved = {key: getattr(args, key) for key in DEFAULTS}
    overridden = {key for key in DEFAULTS if (getattr(args, key) is not None if key in _DICT_KEYS
                                              else getattr(args, key) != merged[key])}

    def origin(key: str) -> str:
        return "command line" if key in overridden else str(known.config) if key in file_config else "defaults"

    for key in _DICT_KEYS:
        if not isinstance(merged[key] or {}, dict):
            raise InputError(f"{origin(key)}: config key {key!r}: expected a mapping, got {merged[key]!r}")
        resolved[key] = dict(merged[key] or {})
        resolved[key].update(dict(getattr(args, key) or []))
    resolved["ignored_keys"] = sorted(key for key in file_config if key in IGNORED_PUBLIC_KEYS)
    resolved["config"] = known.config
    resolved["device_on_command_line"] = known.device is not None
    resolved["command"] = " ".join(shlex.quote(part) for part in ["main_mmcl.py", *argv])
    validate(resolved, origin)
    return resolved


def validate(config: dict[str, Any], origin: Callable[[str], str] = lambda key: "config") -> None:
    """Check the values that would otherwise fail late and obscurely; ``origin(key)`` names where a key's value
    came from (the config file, the command line) in the error."""
    for key, problem in _problems(config):
        raise InputError(f"{origin(key)}: config key {key!r}: {problem}")


def _problems(config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, what is wrong with its value) for each bad value, in a fixed order."""
    if config["phase"] not in ("train", "test"):
        yield "phase", f"expected 'train' or 'test', got {config['phase']!r}"
    for key in ("batch_size", "test_batch_size", "num_epoch", "eval_interval", "warm_up_epoch", "num_worker",
                "skip_nonfinite"):
        value = config[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            yield key, f"expected a non-negative integer, got {value!r}"
        elif value == 0 and key in ("batch_size", "test_batch_size", "eval_interval"):
            yield key, "must be at least 1"
    for key in ("base_lr", "weight_decay", "lr_decay_rate", "lr_ratio"):
        if not isinstance(config[key], (int, float)) or isinstance(config[key], bool):
            yield key, f"expected a number, got {config[key]!r}"
    for key in _DICT_KEYS:
        if not isinstance(config[key], dict):
            yield key, f"expected a mapping, got {config[key]!r}"
    if config["lr_scheduler"] not in ("step", "cosine"):
        yield "lr_scheduler", f"expected step or cosine, got {config['lr_scheduler']!r}"
    if config["optimizer"] not in ("SGD", "AdamW", "Adam"):
        yield "optimizer", f"expected SGD, Adam or AdamW, got {config['optimizer']!r}"
    if config["parallel"] not in ("ddp", "dp"):
        yield "parallel", f"expected ddp or dp, got {config['parallel']!r}"
    for key in ("tf32", "deterministic", "plots"):
        if not isinstance(config[key], bool):
            yield key, f"expected true or false, got {config[key]!r}"
    if not isinstance(config["amp"], bool) and config["amp"] not in AMP_DTYPES:
        yield "amp", f"expected true or false, got {config['amp']!r} (or an autocast dtype: {' or '.join(AMP_DTYPES)})"
    device = config["device"]
    on_cpu = isinstance(device, list) and bool(device) and all(d == "cpu" for d in device)  # one process per entry
    if not on_cpu and (not isinstance(device, list) or not all(type(d) is int and d >= 0 for d in device)):
        yield "device", f"expected CUDA ids (0 1 ...) or cpu (cpu ...), got {device!r}"
    for key in ("show_topk", "step"):
        value = config[key]
        if not isinstance(value, list) or not all(type(k) is int for k in value) or key == "show_topk" and not value:
            yield key, f"expected a list of integers, got {value!r}"


def dump_config(config: dict[str, Any]) -> str:
    """The resolved config as YAML, first line the command that produced it (a comment)."""
    body = {key: value for key, value in config.items()
            if key not in ("command", "ignored_keys", "config", "device_on_command_line")}
    return f"# command line: {config['command']}\n" + yaml.safe_dump(body, sort_keys=False)
