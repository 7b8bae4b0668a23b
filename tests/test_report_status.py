"""The report tells the truth about what failed: a framework that left no metrics.json, a
study with a failed phase, and a metrics.json the harness cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from harness.report import write_report
from harness.results.traces import list_traces
from harness.run.summary import print_summary
from harness_contract.errors import HarnessError
from harness_contract.metrics import VariantMetrics
from tests.test_report import _baseline, _ptq, make_metrics, write_run

LOG_LINES = [f"epoch {i}: loss {2.0 - i / 10:.2f}" for i in range(1, 15)] + ["Killed"]


def _killed_tensorflow(run: Path) -> Path:
    """The host made the folder and started runner.log; the runner died before metrics.json."""
    log = run / "tensorflow" / "runner.log"
    log.parent.mkdir(parents=True)
    log.write_text("\n".join(LOG_LINES))  # killed mid-line: no final newline
    return log


def _section(report: str, heading: str) -> str:
    return report.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


# ---------------------------------------------------------------- a framework left no metrics


def test_a_framework_without_metrics_is_failed_in_the_report_with_its_log_tail(
    tmp_path: Path,
) -> None:
    write_run(tmp_path, make_metrics("pytorch"))
    _killed_tensorflow(tmp_path)

    paths = write_report(tmp_path)
    report = paths.md.read_text()
    status = _section(report, "Status")

    assert "Frameworks: pytorch (complete), tensorflow (failed)." in report
    assert "- **tensorflow** run failed: the runner stopped before writing metrics.json" in status
    assert "All frameworks complete" not in report
    for line in LOG_LINES[-10:]:
        assert f"  {line}" in status
    assert LOG_LINES[-11] not in status  # only the last 10 lines
    assert "| tensorflow | qat | int8 | failed |" in _section(report, "Accuracy")
    html = paths.html.read_text()
    assert "tensorflow</strong> run failed" in html and "<pre class='log'>" in html
    assert "epoch 14: loss 0.60\nKilled</pre>" in html


def test_results_csv_has_failed_rows_for_a_framework_without_metrics(tmp_path: Path) -> None:
    write_run(tmp_path, make_metrics("pytorch"))
    _killed_tensorflow(tmp_path)

    back = pd.read_csv(write_report(tmp_path).csv)

    tf = back[back["framework"] == "tensorflow"]
    assert list(tf["variant"]) == ["baseline", "ptq", "qat"]
    assert set(tf["status"]) == {"failed"} and set(tf["run_status"]) == {"failed"}
    assert all("last line of tensorflow/runner.log: Killed" in r for r in tf["reason"])
    assert list(back["framework"]) == ["pytorch"] * 3 + ["tensorflow"] * 3


def test_an_asked_framework_that_left_no_folder_is_failed_in_the_report(tmp_path: Path) -> None:
    """run.json names the frameworks the run was started for: one whose runner never
    started (not installed, say) left no folder, and is still shown failed."""
    from harness.run.record import StudyRecord
    from harness.run.rundir import RunDir

    write_run(tmp_path, make_metrics("pytorch"))
    StudyRecord(
        command="compare",
        frameworks=["pytorch", "tensorflow"],
        data_path="/data",
        data_digest="0" * 64,
        data_origin="given",
        backend="local",
    ).write(RunDir(tmp_path).record_path)

    paths = write_report(tmp_path)
    status = _section(paths.md.read_text(), "Status")

    assert "**tensorflow** run failed" in status and "it never started" in status
    tf = pd.read_csv(paths.csv).query("framework == 'tensorflow'")
    assert set(tf["status"]) == {"failed"}


def test_a_framework_without_a_log_is_failed_and_says_so(tmp_path: Path) -> None:
    write_run(tmp_path, make_metrics("pytorch"))
    (tmp_path / "tensorflow").mkdir()

    status = _section(write_report(tmp_path).md.read_text(), "Status")

    assert "**tensorflow** run failed" in status and "it left no runner.log" in status


def test_a_run_where_every_runner_died_names_their_last_log_lines(tmp_path: Path) -> None:
    _killed_tensorflow(tmp_path)

    with pytest.raises(HarnessError) as info:
        write_report(tmp_path)

    assert info.value.problem.startswith(f"no results in {tmp_path} (tensorflow: ")
    assert "last line of tensorflow/runner.log: Killed" in info.value.problem


def test_the_summary_after_a_run_shows_the_failed_framework(tmp_path: Path) -> None:
    write_run(tmp_path, make_metrics("pytorch"))
    _killed_tensorflow(tmp_path)
    console = Console(record=True, width=200)

    print_summary(tmp_path, console)

    lines = [x for x in console.export_text().splitlines() if "tensorflow" in x]
    assert len(lines) == 3 and all("failed" in x for x in lines)


def test_traces_names_a_framework_without_metrics(tmp_path: Path) -> None:
    write_run(tmp_path, make_metrics("pytorch"))
    _killed_tensorflow(tmp_path)

    listing = list_traces(tmp_path)

    assert [f.split(":")[0] for f in listing.failed] == ["tensorflow"]
    assert {e.framework for e in listing.entries} == {"pytorch"}


# ---------------------------------------------------------------- a phase failed


def test_a_finished_study_with_a_failed_phase_is_complete_with_failures(tmp_path: Path) -> None:
    failed = VariantMetrics(
        variant="qat", status="failed", precision="int8", reason="NaN loss in epoch 2"
    )
    write_run(tmp_path, make_metrics("pytorch", variants=[_baseline(), _ptq(), failed]))

    paths = write_report(tmp_path)
    report = paths.md.read_text()

    assert "Frameworks: pytorch (complete with failures)." in report
    assert "- **pytorch** run is complete with failures" in _section(report, "Status")
    assert "- **pytorch / qat** failed: NaN loss in epoch 2" in report
    assert set(pd.read_csv(paths.csv)["run_status"]) == {"complete with failures"}


# ---------------------------------------------------------------- unreadable metrics.json


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "is not valid JSON"),
        ('{"schema_version": 7}', "has schema_version 7"),
        (json.dumps({"schema_version": 1, "framework": "tensorflow"}), "does not match"),
    ],
)
def test_an_unreadable_metrics_file_is_a_named_problem_of_the_written_report(
    tmp_path: Path, content: str, says: str
) -> None:
    write_run(tmp_path, make_metrics("pytorch"))
    bad = tmp_path / "tensorflow" / "metrics.json"
    bad.parent.mkdir()
    bad.write_text(content)

    paths = write_report(tmp_path)

    assert paths.md.is_file() and "| pytorch | ptq |" in paths.md.read_text()
    assert len(paths.problems) == 1
    assert str(bad) in paths.problems[0] and says in paths.problems[0]
    with pytest.raises(HarnessError) as info:
        paths.raise_for_problems()
    assert str(bad) in info.value.one_line() and says in info.value.one_line()


def test_a_run_whose_only_metrics_file_is_unreadable_raises_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "pytorch" / "metrics.json"
    bad.parent.mkdir()
    bad.write_text('{"schema_version": 99}')

    with pytest.raises(HarnessError) as info:
        write_report(tmp_path)

    assert str(bad) in info.value.problem and "schema_version 99" in info.value.problem
    assert not (tmp_path / "report.md").exists()
