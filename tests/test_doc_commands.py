"""Every command the README and docs/ show still parses: the module exists, each option is one its parser
knows, and each config path exists.

Commands are read from ``bash`` blocks (continued lines joined, comments dropped, ``&&`` / ``;`` / ``|`` split)
and from inline code that starts with ``python``. Placeholders (``...``, ``<yaml>``, ``$D``, ``[--npz]``'s
brackets) are tolerated; only options and paths that are written out are checked.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from engine.config import DEFAULTS, build_parser
from tests.commands import ROOT, command_parser

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAMS = ("python", "python3", "torchrun")
CONFIG_COMMANDS = ("tools.complexity", "tools.infer", "tools.visualize", "tools.export_onnx")


def _shell_lines(text: str) -> list[str]:
    """The command lines of ``text``'s bash blocks and of its inline code starting with ``python``."""
    lines = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [re.sub(r"(^|\s)#.*", "", line) for line in joined.splitlines()]
    inline = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    lines += [" ".join(span.split()) for span in re.findall(r"`(python[^`]+)`", inline)]
    return [part.strip() for line in lines for part in re.split(r"&&|;|\|", line) if part.strip()]


def _command(line: str) -> tuple[str, list[str]] | None:
    """(module, arguments) of a line running one of the project's commands, else None."""
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    if not words or words[0] not in PROGRAMS:
        return None
    if words[0] == "torchrun":
        scripts = [i for i, word in enumerate(words) if word.endswith(".py")]
        return (words[scripts[0]].removesuffix(".py").replace("/", "."), words[scripts[0] + 1:]) if scripts else None
    if len(words) > 2 and words[1] == "-m":
        return words[2], words[3:]
    if len(words) > 1 and words[1].endswith(".py"):
        return words[1].removesuffix(".py").replace("/", "."), words[2:]
    return None


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """(page, module, arguments) of every project command the pages show."""
    found = []
    for page in PAGES:
        for line in _shell_lines(page.read_text()):
            command = _command(line)
            if command and command[0].split(".")[0] in {"main_mmcl", "tools", "llm_features", "ensemble", "bench"}:
                found.append((page.name, *command))
    return found


COMMANDS = documented_commands()


def _options(arguments: list[str]) -> list[str]:
    """The options written out in ``arguments`` (``--name`` of ``--name=value`` and of ``[--name K]``)."""
    return [word.strip("[]").split("=")[0] for word in arguments if word.strip("[").startswith("--")]


def _config_paths(arguments: list[str]) -> list[str]:
    return [word for word in arguments if re.fullmatch(r"config/[\w./-]+\.yaml", word)]


def test_the_pages_show_the_main_commands():
    modules = {module for _, module, _ in COMMANDS}
    assert {"main_mmcl", "tools.prepare_ntu", "tools.run_demo", "llm_features.answer_questions",
            "ensemble.ensemble", "bench.bench_demo"} <= modules
    assert len(COMMANDS) > 50


def command_problems(commands: list[tuple[str, str, list[str]]], module_name: str, known: set[str]) -> list[str]:
    """One line per option of ``module_name``'s documented commands not in ``known``, and per missing config."""
    problems = []
    for page, module, arguments in commands:
        if module != module_name:
            continue
        problems += [f"{page}: {module} {option}: no such option" for option in _options(arguments)
                     if option not in known]
        problems += [f"{page}: {path}: no such config" for path in _config_paths(arguments)
                     if not (ROOT / path).is_file()]
    return problems


def test_a_wrong_option_or_config_is_caught():
    page = """```bash
python -m tools.prepare_ntu --dataset ntu60 \\
    --skeletons S [--npz]   # a comment --not-an-option
python main_mmcl.py --config config/nowhere.yaml --phase test && python -m tools.run_demo --bogus
```
and `python -m tools.prepare_ntu --typo X` inline."""
    commands = [("page", *_command(line)) for line in _shell_lines(page) if _command(line)]
    assert [module for _, module, _ in commands] == ["tools.prepare_ntu", "main_mmcl", "tools.run_demo",
                                                     "tools.prepare_ntu"]
    assert command_problems(commands, "tools.prepare_ntu", {"--dataset", "--skeletons", "--npz"}) == [
        "page: tools.prepare_ntu --typo: no such option"]
    assert command_problems(commands, "main_mmcl", {"--config", "--phase"}) == [
        "page: config/nowhere.yaml: no such config"]


@pytest.mark.parametrize("module_name", sorted({module for _, module, _ in COMMANDS}))
def test_documented_commands_parse(module_name, monkeypatch):
    assert (ROOT / Path(*module_name.split("."))).with_suffix(".py").is_file(), f"no module {module_name}"
    parser = command_parser(module_name, monkeypatch)
    known = set(parser._option_string_actions) if parser else set()
    if module_name in CONFIG_COMMANDS:  # they pass config overrides on to main_mmcl's parser
        known |= set(build_parser(DEFAULTS)._option_string_actions)
    assert command_problems(COMMANDS, module_name, known) == []
