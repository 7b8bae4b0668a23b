"""``python -m tf_runner --spec FILE --data DIR --out DIR``: the TensorFlow runner."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness_contract.framework import Framework

# The versions this runner was tested with; a different major.minor is refused.
SUPPORTED = {"tensorflow": "2.21.0", "tf-keras": "2.21.0", "tensorflow-model-optimization": "0.8.1"}
INSTALL_HINT = "pip install -e '.[tensorflow]'"
# TensorFlow ships under several distribution names, all importing as `tensorflow`.
_TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos")


def _version(*distributions: str) -> str | None:
    for dist in distributions:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def installed_versions() -> dict[str, str | None]:
    """Read from package metadata, so a broken or wrong TensorFlow is never imported."""
    return {
        "tensorflow": _version(*_TF_DISTRIBUTIONS),
        "tf-keras": _version("tf-keras"),
        "tensorflow-model-optimization": _version("tensorflow-model-optimization"),
    }


def _major_minor(version: str) -> list[str]:
    return version.split(".")[:2]


def version_problem(installed: Mapping[str, str | None]) -> str | None:
    """One line naming what is missing or unsupported and the versions that work, or None."""
    problems = []
    for name, tested in SUPPORTED.items():
        found = installed.get(name)
        if found is None:
            problems.append(f"{name} is not installed")
        elif _major_minor(found) != _major_minor(tested):
            problems.append(f"{name} {found} is not supported")
    if not problems:
        return None
    works = ", ".join(f"{name} {v}" for name, v in SUPPORTED.items())
    return (
        f"{'; '.join(problems)}; the TensorFlow runner works with {works}: "
        f"install them with: {INSTALL_HINT}"
    )


def _framework() -> Framework:
    # Imported lazily, so --help and a version error need no TensorFlow.
    from harness_contract.errors import HarnessError

    problem = version_problem(installed_versions())
    if problem:
        raise HarnessError(problem)
    from .runner import TFFramework

    return TFFramework()


def main(argv: list[str] | None = None) -> int:
    from harness_contract.entrypoint import main as run

    return run(_framework, argv, prog="python -m tf_runner")


if __name__ == "__main__":
    sys.exit(main())
