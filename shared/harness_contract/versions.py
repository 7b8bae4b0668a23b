"""The framework versions each runner was tested with: the one place they are written.

pyproject.toml's extras and images/lock.toml (which the Dockerfiles and requirements.txt
follow) must agree with these pins; tests/test_runner_versions.py checks both. Both
runners' ``__main__`` check what is installed through ``check_versions`` before they
import their framework: installed versions are read from package metadata, so a broken
or wrong framework is never imported just to be refused.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import HarnessError


@dataclass(frozen=True)
class Pin:
    package: str
    version: str
    # False: tested and installed by the extra, but the runner works without it (a
    # fallback or an optional feature), so a runner does not refuse to start over it.
    required: bool = True
    # Other distribution names the same import ships under.
    aliases: tuple[str, ...] = ()


TESTED: dict[str, tuple[Pin, ...]] = {
    "pytorch": (
        Pin("torch", "2.13.0"),
        Pin("torchao", "0.18.0"),
        # The ExecuTorch rung (XNNPACK .pte); without it that rung is recorded unavailable.
        Pin("executorch", "1.5.1", required=False),
    ),
    "tensorflow": (
        Pin(
            "tensorflow",
            "2.21.0",
            aliases=("tensorflow-cpu", "tensorflow-intel", "tensorflow-macos"),
        ),
        Pin("tf-keras", "2.21.0"),
        Pin("tensorflow-model-optimization", "0.8.1"),
        Pin("ai-edge-litert", "2.3.0", required=False),  # falls back to tf.lite.Interpreter
        Pin("tensorboard-plugin-profile", "2.22.1", required=False),  # op tables of traces
        Pin("tensorboard", "2.21.0", required=False),  # opens traces (`harness traces`)
    ),
}
RUNNER_NAMES = {"pytorch": "PyTorch", "tensorflow": "TensorFlow"}


def install_hint(framework: str) -> str:
    return f"pip install -e '.[{framework}]'"


def pinned(framework: str, required_only: bool = False) -> dict[str, str]:
    """package -> tested version for this framework's runner."""
    return {p.package: p.version for p in TESTED[framework] if p.required or not required_only}


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
    return {p.package: _installed(p.package, *p.aliases) for p in TESTED[framework] if p.required}


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
        f"{'; '.join(problems)}; the {RUNNER_NAMES[framework]} runner works with "
        f"{pinned_line(framework)}: install them with: {install_hint(framework)}"
    )


def check_versions(framework: str) -> None:
    """Raise HarnessError (one line, with the fix) unless the tested versions are installed."""
    problem = version_problem(framework, installed_versions(framework))
    if problem:
        raise HarnessError(problem)
