"""The project's commands, found rather than listed, and the parser each one's ``main`` builds.

A command is ``main_mmcl.py`` or a module of ``tools/``, ``llm_features/``, ``ensemble/`` or ``bench/`` that
defines ``main(argv)``; its parser is the very one ``main`` builds, caught when ``main`` hands it ``--help``.
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMAND_FOLDERS = ("tools", "llm_features", "ensemble", "bench")
OPTIONAL_MODULES = ("onnx", "onnxruntime")  # the ONNX extra: commands needing it are skipped without it


def command_modules() -> list[str]:
    """Dotted names of the modules defining ``main(``: main_mmcl and those of the command folders."""
    files = [ROOT / "main_mmcl.py",
             *sorted(path for folder in COMMAND_FOLDERS for path in (ROOT / folder).glob("*.py"))]
    return [".".join(path.relative_to(ROOT).with_suffix("").parts) for path in files
            if "def main(" in path.read_text()]


class _Parsing(BaseException):
    """Raised instead of parsing, carrying the parser (a BaseException: no command's ``except`` holds it)."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


def command_parser(module_name: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser | None:
    """The parser ``main`` of ``module_name`` parses its command line with (the first one with ``-h``: a
    pre-parser without it, such as ``--config``'s, parses as usual), or None if ``main`` parses none."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name in OPTIONAL_MODULES:
            pytest.skip(f"{module_name} needs the optional {error.name} (requirements-deploy.txt)")
        raise
    parse_known_args = argparse.ArgumentParser.parse_known_args

    def catch(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        if self.add_help:
            raise _Parsing(self)
        return parse_known_args(self, args, namespace)

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_known_args", catch)
        try:
            module.main(["--help"])
        except _Parsing as parsing:
            return parsing.parser
    return None
