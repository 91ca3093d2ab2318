"""Every option of every command has a help text that states its default.

The commands are found, not listed: ``main_mmcl.py`` and each module of ``tools/``, ``llm_features/``,
``ensemble/`` and ``bench/`` that defines ``main(argv)``. Each one's parser is the very one its ``main`` builds,
caught when ``main`` hands it the command line. The rule: every option but ``-h`` has a non-empty help; an
option that takes a value and is not required says ``default`` and, when its default is a real value (not
None, False or empty), shows that value; no help shows argparse's ``default: None`` noise.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.config import DEFAULTS, build_parser
from tests.commands import ROOT, command_modules, command_parser

NOISE = ("default: None", "default: []", "default: ()", "default: {}")


def _is_set(default: Any) -> bool:
    """Whether ``default`` is a value the help must show (None, False and empty values mean "not given")."""
    if default is None or default is False or default is argparse.SUPPRESS:
        return False
    return not (isinstance(default, (str, list, tuple, dict)) and not default)


def _typed(value: Any) -> str:
    """``value`` as typed on the command line: a whole float without its ``.0``, list items separated by spaces."""
    if isinstance(value, (list, tuple)):
        return " ".join(map(_typed, value))
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _renderings(default: Any) -> set[str]:
    """Ways a help may show ``default``, lower-cased: as Python prints it, or as typed on the command line."""
    return {str(default).lower(), _typed(default).lower()}


def help_problems(parser: argparse.ArgumentParser) -> Iterator[str]:
    """One line per option whose help breaks the rule (see the module's docstring)."""
    formatter = parser._get_formatter()
    in_required_group = {id(action) for group in parser._mutually_exclusive_groups if group.required
                         for action in group._group_actions}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        name = "/".join(action.option_strings) or action.dest
        text = formatter._expand_help(action) if action.help else ""
        lowered = " ".join(text.split()).lower()
        if not lowered:
            yield f"{name}: no help text"
            continue
        noise = next((phrase for phrase in NOISE if phrase in text), None)
        if noise is not None:
            yield f"{name}: says {noise!r}; say what not giving it means"
        required = action.required or id(action) in in_required_group
        if required or (action.nargs == 0 and not _is_set(action.default)):
            continue
        if "default" not in lowered:
            yield f"{name}: the help does not state the default ({action.default!r})"
        elif action.nargs != 0 and _is_set(action.default) and not any(
                shown in lowered for shown in _renderings(action.default)):
            yield f"{name}: the help does not show the default {action.default!r}"


COMMANDS = command_modules()


def test_the_commands_are_found():
    assert {"main_mmcl", "tools.prepare_ntu", "tools.make_rgb_strips", "llm_features.answer_questions",
            "ensemble.ensemble", "bench.bench_backbone"} <= set(COMMANDS)


@pytest.mark.parametrize("module_name", COMMANDS)
def test_every_option_has_a_help_that_states_its_default(module_name, monkeypatch):
    parser = command_parser(module_name, monkeypatch)
    if parser is None:  # a main without a parser of its own (tools.complexity reads main_mmcl's options)
        assert "argparse" not in (ROOT / Path(*module_name.split("."))).with_suffix(".py").read_text()
        return
    assert list(help_problems(parser)) == []


def test_the_rule_catches_options_without_help_or_default():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="where to write")
    parser.add_argument("--bare")
    parser.add_argument("--size", type=int, default=160, help="side in pixels")
    parser.add_argument("--noisy", help="a file (default: %(default)s)")
    parser.add_argument("--steps", nargs="+", type=int, default=[35, 55], help="decay epochs (default: 35 55)")
    parser.add_argument("--csv", help="also write a CSV file (default: none written)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    assert list(help_problems(parser)) == [
        "--bare: no help text",
        "--size: the help does not state the default (160)",
        "--noisy: says 'default: None'; say what not giving it means",
    ]


def test_main_mmcl_help_shows_the_config_files_values():
    defaults = {**DEFAULTS, "step": [90, 100], "base_lr": 0.05, "amp": True, "weights": "best.pt"}
    help_text = " ".join(build_parser(defaults).format_help().split())
    for shown in ("(default: 90 100)", "(default: 0.05)", "(default: true)", "(default: best.pt)",
                  "(default: 1 5)"):
        assert shown in help_text
    assert "default: None" not in help_text
