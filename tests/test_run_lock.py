"""One owner per run directory: a live run's lock refuses --resume, --run-id and
`harness report`; a stale one is taken over; another host's is refused with the fix."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.run.rundir import RunDir
from harness_contract.metrics import read_metrics, write_metrics
from harness_contract.spec import build_spec
from tests.cli_output import one_error_line
from tests.fake_runner import CLI_DRIVER, metrics_for

pytest_plugins = ("tests.run_fixtures",)


def _write_lock(run: RunDir, pid: int, host: str | None = None) -> None:
    owner = {
        "pid": pid,
        "host": host or socket.gethostname(),
        "started_at": "2026-11-29T09:00:00+00:00",
        "command": "harness run pytorch",
    }
    run.lock_path.write_text(json.dumps(owner))


@pytest.fixture
def live_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    """A run directory as `harness run` leaves it (spec.json, no results yet)."""
    run = RunDir(tmp_path / "results" / "taken")
    run.path.mkdir(parents=True)
    run.spec_path.write_text(build_spec("smoke").to_json())
    return run


def test_live_run_is_refused_by_resume_naming_its_pid(
    run: RunDir, live_pid: int, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_lock(run, live_pid)

    code = main(["run", "pytorch", "--resume", str(run.path)])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert f"pid {live_pid}" in line and socket.gethostname() in line and "since" in line
    assert not run.framework("pytorch").path.exists()  # nothing was launched
    assert json.loads(run.lock_path.read_text())["pid"] == live_pid  # its lock is untouched


def test_live_run_is_refused_by_report(
    run: RunDir, live_pid: int, capsys: pytest.CaptureFixture[str]
) -> None:
    write_metrics(run.framework("pytorch").metrics, metrics_for("pytorch", run.run_id))
    _write_lock(run, live_pid)

    code = main(["report", str(run.path)])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and f"pid {live_pid}" in line
    assert not run.report_md.exists()


def test_run_id_of_a_live_run_is_refused_without_suggesting_resume(
    run: RunDir, live_pid: int, tiny_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_lock(run, live_pid)
    argv = ["run", "pytorch", "--data", str(tiny_data), "--results", str(run.path.parent)]

    code = main([*argv, "--run-id", run.run_id])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "already exists" in line and f"pid {live_pid}" in line
    assert "--resume" not in line


def test_stale_lock_is_taken_over_with_a_note(
    run: RunDir, dead_pid: int, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_lock(run, dead_pid)

    code = main(["run", "pytorch", "--resume", str(run.path)])

    err = capsys.readouterr().err
    assert code == 0, err
    assert "taking over" in err and f"pid {dead_pid}" in err
    assert read_metrics(run.framework("pytorch").metrics).status == "complete"
    assert not run.lock_path.exists()


def test_lock_of_another_host_is_refused_with_the_fix(
    run: RunDir, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_lock(run, 1, host="elsewhere.example")

    code = main(["run", "pytorch", "--resume", str(run.path)])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "elsewhere.example" in line
    assert f"remove {run.lock_path}" in line


def test_a_run_holds_its_lock_while_running_and_removes_it_after(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    code = main(["run", "pytorch", "--data", str(tiny_data), "--results", str(results)])

    assert code == 0, capsys.readouterr().err
    (run_dir,) = results.iterdir()
    log = RunDir(run_dir).framework("pytorch").log.read_text()
    held = json.loads(log.split("LOCK ", 1)[1].splitlines()[0])
    assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
    assert "run pytorch" in held["command"] or held["command"].startswith("harness")
    assert not RunDir(run_dir).lock_path.exists()


def test_the_lock_is_removed_when_the_run_fails(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "crash")
    results = tmp_path / "results"

    code = main(["run", "pytorch", "--data", str(tiny_data), "--results", str(results)])

    assert code == 1, capsys.readouterr().err
    (run_dir,) = results.iterdir()
    assert not RunDir(run_dir).lock_path.exists()


def test_resume_of_a_run_being_written_is_refused_and_the_live_run_completes(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "slow")
    results = tmp_path / "results"
    live = subprocess.Popen(
        [sys.executable, "-c", CLI_DRIVER, "run", "pytorch", "--data", str(tiny_data)]
        + ["--results", str(results), "--run-id", "live"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run = RunDir(results / "live")
    deadline = time.monotonic() + 30
    while "READY" not in _text(run.framework("pytorch").log):
        assert time.monotonic() < deadline and live.poll() is None, live.communicate()
        time.sleep(0.05)

    code = main(["run", "pytorch", "--resume", str(run.path)])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and f"pid {live.pid}" in line
    out, err = live.communicate(timeout=60)
    assert live.returncode == 0, err
    assert read_metrics(run.framework("pytorch").metrics).status == "complete"
    assert not run.set_aside_attempts("pytorch")


def _text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


# ---------------------------------------------------------------- the lock itself
# (harness.run.owner_lock is imported in each test, so the CLI tests above run against any version)


def test_acquire_creates_the_lock_exclusively(tmp_path: Path) -> None:
    from harness.run import owner_lock as lock

    path = tmp_path / ".lock"
    me = lock.acquire(tmp_path, path, "first")
    with pytest.raises(Exception, match=f"pid {os.getpid()}"):
        lock.acquire(tmp_path, path, "second")
    lock.release(path, me)
    assert not path.exists()


def test_a_recycled_pid_is_not_mistaken_for_the_owner(tmp_path: Path) -> None:
    from harness.run import owner_lock as lock

    path = tmp_path / ".lock"
    recorded = lock.current_owner("old run")
    stale = lock.LockOwner(recorded.pid, recorded.host, "then", "old run", pid_start="1")
    path.write_text(json.dumps(stale.__dict__))
    notes: list[str] = []

    owner = lock.acquire(tmp_path, path, "new run", notes.append)

    assert owner.command == "new run" and notes and "taking over" in notes[0]


def test_release_never_removes_another_process_lock(tmp_path: Path) -> None:
    from harness.run import owner_lock as lock

    path = tmp_path / ".lock"
    mine = lock.acquire(tmp_path, path, "mine")
    path.unlink()
    _write_lock(RunDir(tmp_path), 1)
    lock.release(path, mine)
    assert path.exists()
