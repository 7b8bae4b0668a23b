"""Checking the framework versions a runner was tested with (the pins live in the
framework table, harness_contract.frameworks).

pyproject.toml's extras and images/lock.toml (which the Dockerfiles and requirements.txt
follow) must agree with these pins; tests/test_runner_versions.py checks both. Both
runners' ``__main__`` check what is installed through ``check_versions`` before they
import their framework: installed versions are read from package metadata, so a broken
or wrong framework is never imported just to be refused.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping

from harness_contract.errors import HarnessError
from harness_contract.frameworks import FRAMEWORKS


def pinned(framework: str, required_only: bool = False) -> dict[str, str]:
    """package -> tested version for this framework's runner."""
    return {
        p.package: p.version for p in FRAMEWORKS[framework].pins if p.required or not required_only
    }


def pinned_line(framework: str) -> str:
    """The versions a runner needs, for messages: ``torch 2.13.0, torchao 0.18.0``."""
    return ", ".join(f"{name} {v}" for name, v in pinned(framework, required_only=True).items())


def _installed(*distributions: str) -> str | None:
    for dist in distributions:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def installed_versions(framework: str) -> dict[str, str | None]:
    """The installed version of each package the runner needs (None: not installed)."""
    return {
        p.package: _installed(p.package, *p.aliases)
        for p in FRAMEWORKS[framework].pins
        if p.required
    }


def _major_minor(version: str) -> list[str]:
    return version.split("+")[0].split(".")[:2]  # a local build label (2.13.0+cpu) is the same


def version_problem(framework: str, installed: Mapping[str, str | None]) -> str | None:
    """One line naming what is missing or unsupported and the versions that work, or None.

    Patch releases are accepted: a different major.minor is refused.
    """
    problems = []
    for name, version in pinned(framework, required_only=True).items():
        found = installed.get(name)
        if found is None:
            problems.append(f"{name} is not installed")
        elif _major_minor(found) != _major_minor(version):
            problems.append(f"{name} {found} is not supported")
    if not problems:
        return None
    return (
        f"{'; '.join(problems)}; the {FRAMEWORKS[framework].display} runner works with "
        f"{pinned_line(framework)}: install them with: {FRAMEWORKS[framework].install_hint}"
    )


def check_versions(framework: str) -> None:
    """Raise HarnessError (one line, with the fix) unless the tested versions are installed."""
    problem = version_problem(framework, installed_versions(framework))
    if problem:
        raise HarnessError(problem)
