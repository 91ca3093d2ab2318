"""The README's two set-up commands stay true: CI runs its test command verbatim, the demo command exists."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if "pytest" in line]
    assert ci_lines and ci_lines[0].strip() in readme


def test_readme_demo_command_names_a_real_module():
    readme = (ROOT / "README.md").read_text()
    module = re.search(r"pip install -c requirements-lock\.txt -r requirements\.txt && python -m ([\w.]+)\n", readme).group(1)
    assert (ROOT / Path(*module.split("."))).with_suffix(".py").is_file()
