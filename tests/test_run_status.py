"""Status tells the truth: failed phases end "complete with failures" with exit 1 and are
retried by --resume (the earlier attempt kept); a timeout is recorded as one; a runner
killed before it wrote metrics fails the study; metrics.json is never left 'running'."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from harness.cli.main import main
from harness.run.rundir import RunDir
from harness_contract.metrics import read_metrics, write_metrics
from harness_contract.spec import build_spec
from tests.cli_output import error_lines, one_error_line
from tests.fake_runner import metrics_for

pytest_plugins = ("tests.run_fixtures",)


def _study(tmp_path: Path, data: Path, *argv: str) -> tuple[int, RunDir]:
    results = tmp_path / "results"
    code = main([*argv, "--data", str(data), "--results", str(results), "--run-id", "r"])
    return code, RunDir(results / "r")


def test_a_failed_phase_ends_complete_with_failures_and_exit_1(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "phase_failed")

    code, run = _study(tmp_path, tiny_data, "run", "pytorch")

    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert code == 1
    assert "complete with failures" in line
    assert "pytorch ptq" in line and "out of memory while calibrating" in line
    assert "study complete:" not in captured.out


def test_resume_retries_a_failed_phase_and_keeps_the_earlier_attempt(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "phase_failed")
    _, run = _study(tmp_path, tiny_data, "run", "pytorch")
    fake_runners.setenv("FAKE_RUNNER", "complete")

    code = main(["run", "pytorch", "--resume", str(run.path)])

    assert code == 0, capsys.readouterr().err
    assert read_metrics(run.framework("pytorch").metrics).failed_phases() == []
    (aside,) = run.set_aside_attempts("pytorch")
    assert read_metrics(aside / "metrics.json").failed_phases() == ["ptq"]


def test_a_finished_study_says_how_long_it_took(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    code, run = _study(tmp_path, tiny_data, "run", "pytorch")

    out = capsys.readouterr().out
    assert code == 0
    assert re.search(rf"study complete: pytorch in {re.escape(str(run.path))} \(took \d+ s\)", out)


def test_a_study_with_failures_says_how_long_it_took_before_its_error_line(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "phase_failed")

    _study(tmp_path, tiny_data, "run", "pytorch")

    err = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"study took \d+ s", err[-2]) and err[-1].startswith("error: ")


def test_a_complete_framework_is_not_relaunched_by_resume(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = _study(tmp_path, tiny_data, "run", "pytorch")
    before = run.framework("pytorch").metrics.read_bytes()

    code = main(["run", "pytorch", "--resume", str(run.path)])

    assert code == 0 and "already complete" in capsys.readouterr().err
    assert run.framework("pytorch").metrics.read_bytes() == before
    assert not run.set_aside_attempts("pytorch")


def test_a_timeout_is_recorded_as_timed_out_not_interrupted(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "sleep")

    code, run = _study(tmp_path, tiny_data, "run", "pytorch", "--timeout", "1")

    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and "timed out after 1 s" in line and "interrupted" not in line
    metrics = read_metrics(run.framework("pytorch").metrics)
    assert metrics.status == "failed"
    assert metrics.error == "timed out after 1 s"


def test_a_runner_killed_before_writing_metrics_fails_the_study(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "killed")

    code, run = _study(tmp_path, tiny_data, "run", "pytorch")

    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert code == 1 and "pytorch" in line and "killed by signal 9" in line
    assert "study complete" not in captured.out
    assert not run.framework("pytorch").metrics.exists()


def test_compare_with_one_runner_killed_exits_1_and_names_it(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "tensorflow=killed")

    code, run = _study(tmp_path, tiny_data, "compare")

    captured = capsys.readouterr()
    line = error_lines(captured.err)[-1]
    assert code == 1
    assert "complete with failures" in line and "tensorflow" in line and "signal 9" in line
    assert "pytorch" not in line.split("retry with:")[0]  # pytorch is fine
    assert read_metrics(run.framework("pytorch").metrics).status == "complete"
    rows = pd.read_csv(run.results_csv)  # the report shows the killed framework as failed
    assert set(rows.loc[rows["framework"] == "tensorflow", "status"]) == {"failed"}
    assert "fake runner tensorflow: killed" in run.report_md.read_text()  # its log tail


def test_a_crashed_runner_never_leaves_metrics_running(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "crash")

    code, run = _study(tmp_path, tiny_data, "run", "pytorch")

    assert code == 1, capsys.readouterr().err
    metrics = read_metrics(run.framework("pytorch").metrics)
    assert metrics.status == "failed" and "simulated crash" in metrics.error


def test_a_killed_runner_is_recorded_with_its_signal_and_phase_not_its_last_log_line(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "killed_mid_phase")

    code, run = _study(tmp_path, tiny_data, "run", "pytorch")

    line = one_error_line(capsys.readouterr().err)
    assert code == 1
    for said in (line, read_metrics(run.framework("pytorch").metrics).error):
        assert "killed by signal 9 (SIGKILL)" in said and "during phase ptq" in said, said
        assert "cls.__new__" not in said and "FutureWarning" not in said
    assert read_metrics(run.framework("pytorch").metrics).status == "failed"
    report = run.report_md.read_text()  # the log's last lines stay, as context
    assert "run is failed" in report and "return cls.__new__(cls, *args)" in report


@pytest.mark.parametrize("how", ["failed", "phase failed", "no metrics.json"])
def test_report_on_a_run_whose_framework_failed_exits_1_as_the_study_did(
    how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    run.spec_path.write_text(build_spec("smoke").to_json())
    write_metrics(run.framework("pytorch").metrics, metrics_for("pytorch", "r"))
    tensorflow = run.framework("tensorflow")
    if how == "no metrics.json":
        tensorflow.path.mkdir()
        tensorflow.log.write_text("Killed\n")
    else:
        metrics = metrics_for("tensorflow", "r", "complete" if how == "phase failed" else how)
        if how == "phase failed":
            metrics.variants["qat"].status = "failed"
            metrics.variants["qat"].reason = "out of memory"
        else:
            metrics.error = "runner killed by signal 9 (SIGKILL) during phase qat"
        write_metrics(tensorflow.metrics, metrics)

    code = main(["report", str(run.path)])

    line = one_error_line(capsys.readouterr().err)
    assert code == 1
    assert "tensorflow" in line and "pytorch" not in line.split("retry with:")[0]
    assert run.report_md.is_file()


def test_report_names_an_unreadable_metrics_file_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    run.spec_path.write_text(build_spec("smoke").to_json())
    write_metrics(run.framework("pytorch").metrics, metrics_for("pytorch", "r"))
    broken = run.framework("tensorflow").metrics
    broken.parent.mkdir()
    broken.write_text("{not json")

    code = main(["report", str(run.path)])

    lines = error_lines(capsys.readouterr().err)
    assert code == 1
    assert any(str(broken) in line for line in lines), lines
    assert run.report_md.is_file()  # the readable framework is still reported
