"""The framework versions the runners were tested with: one source (harness_contract.versions)
that pyproject.toml and images/lock.toml agree with, checked the same way by both runners."""

from __future__ import annotations

import signal
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from harness_contract.frameworks import FRAMEWORKS
from harness_contract.versions import pinned, pinned_line, version_problem

ROOT = Path(__file__).resolve().parents[1]
RUNNERS = {"pytorch": "torch_runner", "tensorflow": "tf_runner"}


def _extra_pins(framework: str) -> dict[str, str]:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    pins = {}
    for line in extras[framework]:
        req = Requirement(line)
        [spec] = req.specifier
        assert spec.operator == "==", f"{line}: the {framework} extra pins exact versions"
        pins[req.name] = spec.version
    return pins


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_pyproject_extra_pins_exactly_the_tested_versions(framework: str) -> None:
    assert _extra_pins(framework) == pinned(framework)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_image_lock_pins_the_tested_versions(framework: str) -> None:
    # The Dockerfiles and requirements.txt follow the lock (tests/test_images.py).
    lock = tomllib.loads((ROOT / "images" / "lock.toml").read_text())[framework]["packages"]
    assert pinned(framework, required_only=True).items() <= lock.items()
    assert lock.items() <= pinned(framework).items()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_tested_versions_and_their_patch_releases_are_accepted(framework: str) -> None:
    working = pinned(framework, required_only=True)
    assert version_problem(framework, working) is None
    first = next(iter(working))
    patched = working[first].rsplit(".", 1)[0] + ".9+local"
    assert version_problem(framework, {**working, first: patched}) is None


@pytest.mark.parametrize(
    ("framework", "package", "found", "problem"),
    [
        ("tensorflow", "tensorflow", "2.16.1", "tensorflow 2.16.1 is not supported"),
        ("tensorflow", "tf-keras", "3.0.0", "tf-keras 3.0.0 is not supported"),
        ("tensorflow", "tensorflow-model-optimization", None, "is not installed"),
        ("pytorch", "torch", "2.11.0+cu130", "torch 2.11.0+cu130 is not supported"),
        ("pytorch", "torchao", None, "torchao is not installed"),
    ],
)
def test_an_unsupported_or_missing_package_is_named_with_the_versions_that_work(
    framework: str, package: str, found: str | None, problem: str
) -> None:
    message = version_problem(framework, {**pinned(framework), package: found})
    assert message is not None and "\n" not in message
    assert problem in message
    assert pinned_line(framework) in message
    assert f"pip install -e '.[{framework}]'" in message


def test_optional_packages_never_stop_a_runner() -> None:
    working = pinned("tensorflow", required_only=True)
    assert "ai-edge-litert" not in working and "tensorboard" not in working
    assert pinned_line("tensorflow") == (
        "tensorflow 2.21.0, tf-keras 2.21.0, tensorflow-model-optimization 0.8.1"
    )


@pytest.fixture
def _keep_sigterm_handler() -> Iterator[None]:
    # The entrypoint installs a SIGTERM handler; do not leave it in the test process.
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("_keep_sigterm_handler")
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_each_runner_refuses_an_unsupported_framework_in_one_line(
    framework: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    synthetic_data: Path,
    tmp_path: Path,
) -> None:
    import importlib

    from harness_contract.spec import build_spec

    first, version = next(iter(pinned(framework).items()))
    old = f"{int(version.split('.')[0]) - 1}.0.0"
    monkeypatch.setattr(
        "harness_contract.versions.installed_versions",
        lambda fw: {**pinned(fw, required_only=True), first: old},
    )
    main = importlib.import_module(f"{RUNNERS[framework]}.__main__").main
    spec = tmp_path / "spec.json"
    spec.write_text(build_spec("smoke", overrides=["data.test_limit=10"]).to_json())
    code = main(["--spec", str(spec), "--data", str(synthetic_data), "--out", str(tmp_path / "o")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert err == [err[0]] and err[0].startswith(f"error: {first} {old} is not supported")
    assert pinned_line(framework) in err[0]
