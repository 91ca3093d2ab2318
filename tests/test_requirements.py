"""The requirement files agree: supported ranges in requirements*.txt, the tested versions in requirements-lock.txt.

A torch / torchvision build installed first (a cluster's CUDA) must satisfy the ranges so that pip keeps it;
CI installs the locked versions.
"""
from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
RANGES = ("requirements.txt", "requirements-deploy.txt")
LOCK = "requirements-lock.txt"


def requirements(name: str) -> list[Requirement]:
    """The requirements listed in file ``name`` (comments and blank lines left out)."""
    lines = (line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def locked() -> dict[str, str]:
    """Package name -> the version the lock file pins; every entry must be an exact pin."""
    pins = {}
    for requirement in requirements(LOCK):
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{LOCK}: {requirement} is not an exact pin"
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_every_requirement_is_locked_within_its_range():
    pins = locked()
    for name in RANGES:
        for requirement in requirements(name):
            version = pins.get(canonicalize_name(requirement.name))
            assert version is not None, f"{name}: {requirement.name} has no pin in {LOCK}"
            assert requirement.specifier.contains(version), f"{name}: {requirement} excludes the locked {version}"


def test_torch_is_a_range_that_keeps_an_older_cluster_build():
    specs = {canonicalize_name(r.name): r.specifier for r in requirements("requirements.txt")}
    assert all(spec.operator != "==" for name in ("torch", "torchvision") for spec in specs[name])
    assert specs["torch"].contains("2.6.0+cu118") and specs["torchvision"].contains("0.21.0+cu118")


def test_ci_installs_the_locked_versions():
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"pip install -c {LOCK} -r requirements-deploy.txt -r requirements.txt" in ci
