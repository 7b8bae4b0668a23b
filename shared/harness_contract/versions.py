"""Checking the framework versions a runner was tested with (the pins live in the
framework table, harness_contract.frameworks).

pyproject.toml's extras and images/lock.toml (which the Dockerfiles and requirements.txt
follow) must agree with these pins; tests/test_runner_versions.py checks both. Both
runners' ``__main__`` check what is installed through ``check_versions`` before they
import their framework: installed versions are read from package metadata, so a broken
or wrong framework is never imported just to be refused.

A GPU host borrowed for minutes often has its own framework build (torch 2.11 with CUDA,
say): ``--allow-untested-versions`` lets a runner go on with another major.minor. The
entrypoint turns the flag on around the runner's own check (``allowing_untested``), and
the provenance records every untested package and that the user allowed it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from harness_contract.errors import HarnessError
from harness_contract.frameworks import FRAMEWORKS

ALLOW_FLAG = "--allow-untested-versions"  # the same spelling on the host and the runner

# Set by the entrypoint for the runner's whole life; read by check_versions and the
# provenance. A context variable, so the runners' zero-argument factories keep their shape.
_ALLOWED: ContextVar[bool] = ContextVar("untested_versions_allowed", default=False)


def pinned(framework: str, required_only: bool = False) -> dict[str, str]:
    """package -> tested version for this framework's runner."""
    return {
        p.package: p.version for p in FRAMEWORKS[framework].pins if p.required or not required_only
    }


def pinned_line(framework: str) -> str:
    """The versions a runner needs, for messages: ``torch 2.13.0, torchao 0.18.0``."""
    return ", ".join(f"{name} {v}" for name, v in pinned(framework, required_only=True).items())


def _installed(*distributions: str) -> str | None:
    import importlib.metadata  # here: the entrypoint imports this module on every start

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


@dataclass(frozen=True)
class Untested:
    """A required package installed at another major.minor than the runner was tested with."""

    package: str
    installed: str
    tested: str


def untested_versions(framework: str, installed: Mapping[str, str | None]) -> list[Untested]:
    """Every required package whose installed major.minor differs from its pin (a missing
    one is not listed: no flag lets a runner go on without it)."""
    return [
        Untested(name, found, version)
        for name, version in pinned(framework, required_only=True).items()
        if (found := installed.get(name)) is not None
        and _major_minor(found) != _major_minor(version)
    ]


def version_problem(
    framework: str, installed: Mapping[str, str | None], allow_untested: bool = False
) -> str | None:
    """One line naming what is missing or unsupported and the versions that work, or None.

    Patch releases are accepted: a different major.minor is refused unless
    ``allow_untested``; a missing package always is.
    """
    missing = [
        f"{name} is not installed"
        for name in pinned(framework, required_only=True)
        if installed.get(name) is None
    ]
    untested = [] if allow_untested else untested_versions(framework, installed)
    problems = missing + [f"{u.package} {u.installed} is not supported" for u in untested]
    if not problems:
        return None
    line = (
        f"{'; '.join(problems)}; the {FRAMEWORKS[framework].display} runner works with "
        f"{pinned_line(framework)}: install them with: {FRAMEWORKS[framework].install_hint}"
    )
    if untested:
        line += f", or pass {ALLOW_FLAG} to run on the installed versions (recorded as untested)"
    return line


@contextlib.contextmanager
def allowing_untested(allow: bool) -> Iterator[None]:
    """Within this block, check_versions accepts another major.minor (``ALLOW_FLAG``)."""
    token = _ALLOWED.set(allow)
    try:
        yield
    finally:
        _ALLOWED.reset(token)


def untested_allowed() -> bool:
    """Whether this runner was started with ``ALLOW_FLAG``."""
    return _ALLOWED.get()


def check_versions(framework: str) -> None:
    """Raise HarnessError (one line, with the fix) unless the tested versions are installed
    (or, with ``ALLOW_FLAG``, at least installed)."""
    problem = version_problem(framework, installed_versions(framework), untested_allowed())
    if problem:
        raise HarnessError(problem)
