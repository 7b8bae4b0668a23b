"""--resume finishes the same study: the recorded dataset (checked by digest), backend,
frameworks and timeout; and the resume command the CLI prints works when pasted."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.run.rundir import RunDir
from harness_contract.data.cifar import load_cifar10, write_synthetic
from harness_contract.metrics import read_metrics, write_metrics
from harness_contract.spec import build_spec
from tests.cli_output import one_error_line
from tests.fake_runner import metrics_for

pytest_plugins = ("tests.run_fixtures",)


def _start(tmp_path: Path, data: Path, *extra: str, command: str = "run") -> RunDir:
    """A run whose runner crashed: unfinished, waiting for --resume."""
    results = tmp_path / "results"
    which = ["pytorch"] if command == "run" else ["--frameworks", "pytorch"]
    argv = [command, *which, "--data", str(data), "--results", str(results), "--run-id", "r"]
    assert main([*argv, *extra]) == 1
    return RunDir(results / "r")


def _launched_data(run: RunDir) -> str:
    """The --data the last runner was started with, from its runner.log command line."""
    log = run.framework("pytorch").log.read_text()
    last = [line for line in log.splitlines() if line.startswith("$ ")][-1]
    (data,) = [a.removeprefix("--data=") for a in shlex.split(last[2:]) if a.startswith("--data=")]
    return data


def dataset_digest(path: Path) -> str:
    return load_cifar10(path).digest


def test_resume_uses_the_recorded_dataset(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "crash")
    run = _start(tmp_path, tiny_data)
    fake_runners.setenv("FAKE_RUNNER", "complete")
    fake_runners.chdir(tmp_path)  # no ./data here: without a record it would go synthetic

    code = main(["run", "pytorch", "--resume", str(run.path)])

    assert code == 0, capsys.readouterr().err
    assert Path(_launched_data(run)).resolve() == tiny_data.resolve()


def test_resume_refuses_changed_data_naming_both_digests(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "crash")
    run = _start(tmp_path, tiny_data)
    before = dataset_digest(tiny_data)
    other = write_synthetic(tmp_path / "other", train_per_batch=400, test_count=500, seed=1)
    capsys.readouterr()

    code = main(["run", "pytorch", "--resume", str(run.path), "--data", str(other)])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert before[:16] in line and dataset_digest(other)[:16] in line and "--force-data" in line
    assert not run.set_aside_attempts("pytorch")  # nothing was relaunched


def test_resume_refuses_data_changed_in_place(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "crash")
    run = _start(tmp_path, tiny_data)
    before = dataset_digest(tiny_data)
    new = write_synthetic(tmp_path / "new", train_per_batch=400, test_count=500, seed=5)
    for name in ("data_batch_1", "test_batch"):  # same path, other files
        (tiny_data / name).write_bytes((new / name).read_bytes())
    capsys.readouterr()

    code = main(["run", "pytorch", "--resume", str(run.path)])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and before[:16] in line and dataset_digest(tiny_data)[:16] in line


def test_force_data_resumes_on_other_data_with_a_note(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "crash")
    run = _start(tmp_path, tiny_data)
    other = write_synthetic(tmp_path / "other", train_per_batch=400, test_count=500, seed=1)
    fake_runners.setenv("FAKE_RUNNER", "complete")
    capsys.readouterr()

    code = main(
        ["run", "pytorch", "--resume", str(run.path), "--data", str(other)] + ["--force-data"]
    )

    err = capsys.readouterr().err
    assert code == 0, err
    assert "note:" in err and "--force-data" in err
    assert Path(_launched_data(run)).resolve() == other.resolve()


def test_resume_of_a_run_without_a_record_checks_the_digest_in_metrics(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    # A run made before run.json existed: the dataset digest is in a metrics.json.
    run = RunDir(tmp_path / "old-run")
    run.path.mkdir()
    run.spec_path.write_text(build_spec("smoke").to_json())
    tensorflow = metrics_for("tensorflow", "old-run")
    tensorflow.dataset.digest = "f" * 64
    write_metrics(run.framework("tensorflow").metrics, tensorflow)

    code = main(["run", "pytorch", "--resume", str(run.path), "--data", str(tiny_data)])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "f" * 16 in line and "tensorflow/metrics.json" in line


def test_resume_keeps_the_recorded_backend(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "crash")
    run = _start(tmp_path, tiny_data)
    capsys.readouterr()

    code = main(["run", "pytorch", "--resume", str(run.path), "--backend", "docker"])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "--backend local" in line and "--backend docker" in line


def test_resume_keeps_the_recorded_timeout(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "sleep")
    fake_runners.setenv("FAKE_RUNNER_SLEEP_S", "10")  # then it completes: no timeout applied
    run = _start(tmp_path, tiny_data, "--timeout", "1")
    capsys.readouterr()

    code = main(["run", "pytorch", "--resume", str(run.path)])

    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and "timed out after 1 s" in line


def test_resume_refuses_options_that_would_change_the_spec(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "crash")
    run = _start(tmp_path, tiny_data)
    capsys.readouterr()

    code = main(["run", "pytorch", "--resume", str(run.path), "--preset", "quick"])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "--preset" in line and "spec.json" in line


def test_the_printed_resume_command_works_when_pasted(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "crash")
    run = _start(tmp_path, tiny_data, "--timeout", "30", command="compare")
    line = one_error_line(capsys.readouterr().err)
    pasted = shlex.split(line.split("retry with: ", 1)[1])
    assert pasted[0] == "harness"
    fake_runners.setenv("FAKE_RUNNER", "complete")
    fake_runners.chdir(tmp_path)

    code = main(pasted[1:])

    assert code == 0, capsys.readouterr().err
    assert run.framework_names() == ["pytorch"]  # the same study: not tensorflow too
    assert read_metrics(run.framework("pytorch").metrics).status == "complete"
    record = json.loads(run.record_path.read_text())
    assert record["frameworks"] == ["pytorch"] and record["timeout_s"] == 30


def test_resuming_one_framework_keeps_the_study_record_of_both(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "pytorch=crash")
    results = tmp_path / "results"
    argv = ["compare", "--data", str(tiny_data), "--results", str(results), "--run-id", "r"]
    assert main(argv) == 1
    run = RunDir(results / "r")
    fake_runners.setenv("FAKE_RUNNER", "complete")

    code = main(["run", "pytorch", "--resume", str(run.path)])

    assert code == 0, capsys.readouterr().err
    record = json.loads(run.record_path.read_text())
    assert record["command"] == "compare" and record["frameworks"] == ["pytorch", "tensorflow"]
