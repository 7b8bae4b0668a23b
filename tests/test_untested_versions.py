"""--allow-untested-versions: without it a runner refuses another major.minor in one line
that names the flag; with it the runner goes on, and metrics.json and the report say so
loudly. An untested version is simulated at the one seam the check reads (the package
metadata lookup, ``installed_versions``); everything after it runs for real."""

from __future__ import annotations

import importlib
import signal
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from harness.cli.main import main as cli_main
from harness.report import write_report
from harness_contract import versions
from harness_contract.entrypoint import main as runner_main
from harness_contract.entrypoint import parse_args, runner_command
from harness_contract.metrics import UntestedVersion, read_metrics, write_metrics
from harness_contract.spec import build_spec
from harness_contract.versions import ALLOW_FLAG, pinned, version_problem
from tests.fake_runner import metrics_for
from tests.numpy_runner import QUICK, PaddedNumpyFramework, use_numpy_runners

pytest_plugins = ("tests.run_fixtures",)

CUDA_TORCH = "2.11.0+cu130"  # what the GPU machines lent to this project hold
RUNNERS = {"pytorch": "torch_runner", "tensorflow": "tf_runner"}


@pytest.fixture
def _keep_sigterm_handler() -> Iterator[None]:
    # The entrypoint installs a SIGTERM handler; do not leave it in the test process.
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def _installed(monkeypatch: pytest.MonkeyPatch, package: str, version: str) -> None:
    """The metadata lookup reports ``package`` at ``version``, the rest as pinned."""

    def lookup(framework: str) -> dict[str, str | None]:
        found: dict[str, str | None] = dict(pinned(framework, required_only=True))
        if package in found:
            found[package] = version
        return found

    monkeypatch.setattr("harness_contract.versions.installed_versions", lookup)


def _spec(tmp_path: Path) -> Path:
    spec = tmp_path / "spec.json"
    spec.write_text(build_spec("smoke", overrides=QUICK).to_json())
    return spec


# ---------------------------------------------------------------- the check


def test_the_refusal_names_the_flag_as_the_other_way_on() -> None:
    message = version_problem("pytorch", {**pinned("pytorch"), "torch": CUDA_TORCH})
    assert message is not None and "\n" not in message
    assert message.startswith(f"torch {CUDA_TORCH} is not supported")
    assert "pip install -e '.[pytorch]'" in message
    assert f"or pass {ALLOW_FLAG} to run on the installed versions" in message


def test_the_flag_waives_another_major_minor_but_never_a_missing_package() -> None:
    other = {**pinned("pytorch"), "torch": CUDA_TORCH}
    assert version_problem("pytorch", other, allow_untested=True) is None
    missing = version_problem("pytorch", {**other, "torchao": None}, allow_untested=True)
    assert missing is not None and missing.startswith("torchao is not installed")
    assert ALLOW_FLAG not in missing  # the flag would not help: do not offer it


def test_untested_versions_lists_only_other_major_minors() -> None:
    found = versions.untested_versions(
        "tensorflow",
        {
            **pinned("tensorflow"),
            "tensorflow": "2.20.1",
            "tf-keras": "2.21.3",
            "tensorflow-model-optimization": None,
        },
    )
    assert found == [versions.Untested("tensorflow", "2.20.1", "2.21.0")]


@pytest.mark.usefixtures("_keep_sigterm_handler")
@pytest.mark.parametrize("framework", RUNNERS)
def test_each_runner_refuses_without_the_flag_and_names_it(
    framework: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    synthetic_data: Path,
    tmp_path: Path,
) -> None:
    first, version = next(iter(pinned(framework).items()))
    old = f"{int(version.split('.')[0]) - 1}.0.0"
    _installed(monkeypatch, first, old)
    run = importlib.import_module(f"{RUNNERS[framework]}.__main__").main
    out = tmp_path / "o"
    code = run(["--spec", str(_spec(tmp_path)), "--data", str(synthetic_data), "--out", str(out)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert err == [err[0]] and err[0].startswith(f"error: {first} {old} is not supported")
    assert ALLOW_FLAG in err[0]
    assert not (out / "metrics.json").exists()


# ---------------------------------------------------------------- the runner, allowed


def _checked_numpy() -> PaddedNumpyFramework:
    """The runners' factory shape: the shared version check first, then the framework
    (the numpy one, named pytorch, so the study runs in seconds)."""
    versions.check_versions("pytorch")
    return PaddedNumpyFramework("pytorch")


@pytest.mark.usefixtures("_keep_sigterm_handler")
def test_a_runner_started_with_the_flag_runs_and_records_the_untested_versions(
    monkeypatch: pytest.MonkeyPatch, synthetic_data: Path, tmp_path: Path
) -> None:
    _installed(monkeypatch, "torch", CUDA_TORCH)
    out = tmp_path / "run" / "pytorch"
    args = ["--spec", str(_spec(tmp_path)), "--data", str(synthetic_data), "--out", str(out)]

    assert runner_main(_checked_numpy, args) == 2  # refused without the flag
    assert runner_main(_checked_numpy, [*args, ALLOW_FLAG]) == 0

    metrics = read_metrics(out / "metrics.json")
    assert metrics.outcome == "complete"
    assert metrics.provenance.untested_versions == [
        UntestedVersion(package="torch", installed=CUDA_TORCH, tested=pinned("pytorch")["torch"])
    ]
    assert metrics.provenance.untested_versions_allowed is True
    assert not versions.untested_allowed()  # the runner's allowance ended with it


def test_the_runner_command_carries_the_flag_only_when_asked() -> None:
    plain = runner_command(Path("s"), Path("d"), Path("o"), "r", "local")
    allowed = runner_command(Path("s"), Path("d"), Path("o"), "r", "local", None, True)
    assert ALLOW_FLAG not in plain and allowed == [*plain, ALLOW_FLAG]
    assert parse_args(allowed, "runner").allow_untested_versions is True
    assert parse_args(plain, "runner").allow_untested_versions is False


@pytest.mark.parametrize("flag", [True, False])
def test_harness_run_passes_the_flag_to_its_runner(
    flag: bool, tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_numpy_runners(monkeypatch)
    results = tmp_path / "results"
    sets = [arg for s in QUICK for arg in ("--set", s)]
    args = ["run", "pytorch", "--data", str(tiny_data), "--results", str(results), "--run-id", "r"]
    code = cli_main([*args, *sets, *([ALLOW_FLAG] if flag else [])])

    assert code == 0
    log = (results / "r" / "pytorch" / "runner.log").read_text().splitlines()[0]
    assert (ALLOW_FLAG in log) is flag  # the pasteable command line says it too
    metrics = read_metrics(results / "r" / "pytorch" / "metrics.json")
    assert metrics.provenance.untested_versions_allowed is flag


def _first_log_line(run: Path, framework: str) -> str:
    return (run / framework / "runner.log").read_text().splitlines()[0]


def test_a_resume_and_a_reproduction_keep_the_flag_the_run_started_with(
    tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The printed resume command and `harness reproduce RUN` carry no flags: the run's
    own record must say that it allowed untested versions, or both would be refused on
    the very host the run was made on."""
    use_numpy_runners(monkeypatch)
    results, sets = tmp_path / "results", [arg for s in QUICK for arg in ("--set", s)]
    args = ["run", "pytorch", "--data", str(tiny_data), "--results", str(results), "--run-id", "r"]
    assert cli_main([*args, *sets, ALLOW_FLAG]) == 0

    assert cli_main(["run", "tensorflow", "--resume", str(results / "r")]) == 0
    assert ALLOW_FLAG in _first_log_line(results / "r", "tensorflow")
    metrics = read_metrics(results / "r" / "tensorflow" / "metrics.json")
    assert metrics.provenance.untested_versions_allowed is True

    assert cli_main(["reproduce", str(results / "r")]) in (0, 1)  # bits are not the point
    for framework in ("pytorch", "tensorflow"):
        assert ALLOW_FLAG in _first_log_line(results / "r-repro-1", framework), framework


def test_run_and_compare_both_take_the_flag() -> None:
    import typer

    from harness.cli.main import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for name in ("run", "compare"):
        flags = {opt for param in commands[name].params for opt in param.opts}
        assert ALLOW_FLAG in flags, name


# ---------------------------------------------------------------- the report


def _run_dir(tmp_path: Path, allowed: bool) -> Path:
    run = tmp_path / "run"
    for framework in ("pytorch", "tensorflow"):
        out = run / framework
        out.mkdir(parents=True)
        m = metrics_for(framework, "r", out=out)
        if framework == "pytorch":
            m.provenance.framework_versions = {"torch": CUDA_TORCH, "torchao": "0.18.0"}
            m.provenance.untested_versions = [
                UntestedVersion(package="torch", installed=CUDA_TORCH, tested="2.13.0")
            ]
            m.provenance.untested_versions_allowed = allowed
        else:
            m.provenance.framework_versions = {"tensorflow": "2.21.0", "tf_keras": "2.21.0"}
        write_metrics(out / "metrics.json", m)
    (run / "spec.json").write_text("{}")
    return run


def test_the_report_warns_of_untested_versions_at_its_top_and_in_its_provenance(
    tmp_path: Path,
) -> None:
    paths = write_report(_run_dir(tmp_path, allowed=True))
    md = paths.md.read_text()

    warning = md.index("**Warning — untested framework versions (pytorch):**")
    assert warning < md.index("## Status")  # among the first lines, before any figure
    assert f"torch {CUDA_TORCH} (tested: 2.13.0)" in md[warning:]
    assert "allowed them with `--allow-untested-versions`" in md
    assert "untested framework versions (tensorflow)" not in md
    provenance = md[md.index("## Provenance") :]
    assert f"torch {CUDA_TORCH} (untested), torchao 0.18.0" in provenance
    assert "allowed by `--allow-untested-versions`" in provenance
    assert "untested framework versions (pytorch)" in paths.html.read_text()

    csv = pd.read_csv(paths.csv)
    versions_by_framework = csv.groupby("framework")["framework_versions"].first()
    assert versions_by_framework["pytorch"] == f"torch {CUDA_TORCH} (untested), torchao 0.18.0"
    assert "untested" not in versions_by_framework["tensorflow"]


def test_a_study_run_without_the_runners_check_says_so(tmp_path: Path) -> None:
    md = write_report(_run_dir(tmp_path, allowed=False)).md.read_text()
    assert "ran without the runner's version check" in md
    assert "not checked by the runner" in md[md.index("## Provenance") :]
