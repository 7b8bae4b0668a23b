"""Messages for paths of the wrong kind, a bare `harness`, and OS errors (disk full,
read-only, no permission): one line naming the path and the fix, never a traceback."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.run.rundir import RunDir
from harness_contract.metrics import write_metrics
from harness_contract.spec import build_spec
from tests.cli_output import one_error_line
from tests.fake_runner import metrics_for

pytest_plugins = ("tests.run_fixtures",)


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    path = tmp_path / "afile"
    path.write_text("not a directory")
    return path


def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    line = one_error_line(capsys.readouterr().err)
    assert code == 2, line
    return line


@pytest.mark.parametrize("argv", [[], ["data"], ["images"]])
def test_a_bare_command_prints_help_and_says_what_is_missing(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert code == 2
    assert "Usage" in captured.out + captured.err
    assert "needs a command" in line and "harness" in line


def test_results_pointing_at_a_file_is_named(
    afile: Path, tiny_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _error(capsys, "run", "pytorch", "--data", str(tiny_data), "--results", str(afile))
    assert str(afile) in line and "is a file, not a directory" in line
    assert afile.read_text() == "not a directory"


def test_spec_pointing_at_a_directory_is_named(
    tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _error(
        capsys, "run", "pytorch", "--spec", str(tmp_path), "--data", str(tiny_data),
        "--results", str(tmp_path / "r"),
    )  # fmt: skip
    assert str(tmp_path) in line and "is a directory" in line and "spec file" in line
    assert not (tmp_path / "r").exists()


def test_data_pointing_at_a_file_is_named(
    afile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _error(capsys, "run", "pytorch", "--data", str(afile), "--results", str(tmp_path / "r"))
    assert str(afile) in line and "not a directory" in line


def test_report_on_a_file_is_named(afile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _error(capsys, "report", str(afile))
    assert str(afile) in line and "is a file, not a run directory" in line


def test_resume_of_a_file_is_named(afile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _error(capsys, "run", "pytorch", "--resume", str(afile))
    assert str(afile) in line and "is a file, not a run directory" in line


# ---------------------------------------------------------------- OS errors


def _fail_with(code: int):  # noqa: ANN202
    def fail(path, *args, **kwargs):  # noqa: ANN001, ANN202
        raise OSError(code, errno.errorcode[code], str(path))

    return fail


def test_a_full_disk_while_writing_spec_json_names_it(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setattr("harness.run.rundir.write_text_atomic", _fail_with(errno.ENOSPC))
    results = tmp_path / "results"

    line = _error(capsys, "run", "pytorch", "--data", str(tiny_data), "--results", str(results))

    assert "spec.json" in line and "no space left" in line and "free space there" in line
    assert list(results.iterdir()) == []  # no empty run directory left behind


def test_a_read_only_results_folder_names_the_lock(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setattr("harness.run.owner_lock.os.open", _fail_with(errno.EROFS))
    results = tmp_path / "results"

    line = _error(capsys, "run", "pytorch", "--data", str(tiny_data), "--results", str(results))

    assert ".lock" in line and "read-only" in line and "--results" in line


def test_an_unwritable_report_names_the_file_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    run.spec_path.write_text(build_spec("smoke").to_json())
    write_metrics(run.framework("pytorch").metrics, metrics_for("pytorch", "r"))

    def denied(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise PermissionError(errno.EACCES, "Permission denied", str(run.report_md))

    monkeypatch.setattr("harness.report.write_report", denied)

    line = _error(capsys, "report", str(run.path))

    assert str(run.report_md) in line and "permission denied" in line and "fix" in line
    assert not run.lock_path.exists()


def test_any_other_os_error_is_one_line_naming_the_path(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setattr("harness.run.record.write_json_atomic", _fail_with(errno.EIO))
    results = tmp_path / "results"

    line = _error(capsys, "run", "pytorch", "--data", str(tiny_data), "--results", str(results))

    assert "run.json" in line and "EIO" in line


def test_a_reader_that_goes_away_is_not_reported_as_a_full_or_read_only_disk(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`harness compare --help | head -3`: the pipe closes under the output (seen here
    as "error: a file: Broken pipe; pass --results on a writable disk"). That is no OS
    error of the results folder: no message, and the shell's status for a closed pipe
    (128 + SIGPIPE), never success."""
    import signal

    import harness.cli.main as cli

    def closed_pipe(args: list[str]) -> object:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_invoke", closed_pipe)
    # Its stdout is pytest's capture here: leave it in place.
    monkeypatch.setattr(cli, "_silence_stdout", lambda: None, raising=False)
    assert main(["compare", "--help"]) == 128 + signal.SIGPIPE
    assert capsys.readouterr().err == ""
