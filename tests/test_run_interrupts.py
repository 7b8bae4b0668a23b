"""Ctrl-C at any moment prints one line and exits 130: while synthetic data is made,
while a runner runs, and a second Ctrl-C while the runner is being stopped. The CLI
runs as a real process here (tests/fake_runner.py serves the frameworks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.run.rundir import RunDir
from harness_contract.metrics import read_metrics
from tests.cli_output import one_error_line
from tests.fake_runner import CLI_DRIVER, use_fake_runners

pytest_plugins = ("tests.run_fixtures",)

# choose_data makes the synthetic dataset; this stand-in says when it started, then
# takes long enough for a Ctrl-C to land inside it.
SLOW_SYNTHETIC = (
    "import sys, time\n"
    "import harness.data.source as ds\n"
    "def slow(*args, **kwargs):\n"
    "    print('READY', flush=True)\n"
    "    time.sleep(60)\n"
    "ds.write_synthetic = slow\n"
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    use_fake_runners(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return dict(os.environ)


def _start(code: str, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


def _wait_for(what: str, path_or_proc, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if isinstance(path_or_proc, Path):
            if path_or_proc.is_file() and what in path_or_proc.read_text():
                return
        elif what in (path_or_proc.stdout.readline() or ""):
            return
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"  # not a zombie


def test_ctrl_c_while_synthetic_data_is_made_prints_one_line(
    tmp_path: Path, env: dict[str, str]
) -> None:
    results = tmp_path / "results"
    proc = _start(
        SLOW_SYNTHETIC + CLI_DRIVER, ["run", "pytorch", "--results", str(results)], env, tmp_path
    )
    _wait_for("READY", proc, proc)

    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)

    assert proc.returncode == 130
    assert err.strip().splitlines() == ["error: interrupted"], err
    assert not results.exists()


def test_ctrl_c_while_a_runner_runs_prints_one_line_and_keeps_the_run(
    tmp_path: Path, env: dict[str, str], tiny_data: Path
) -> None:
    env["FAKE_RUNNER"] = "sleep"
    run = RunDir(tmp_path / "results" / "r")
    argv = ["run", "pytorch", "--data", str(tiny_data), "--results", str(run.path.parent)]
    proc = _start(CLI_DRIVER, [*argv, "--run-id", "r"], env, tmp_path)
    _wait_for("READY", run.framework("pytorch").log, proc)

    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 130
    line = one_error_line(err)
    assert "interrupted" in line and f"harness run pytorch --resume {run.path}" in line
    assert read_metrics(run.framework("pytorch").metrics).status == "interrupted"
    assert not run.lock_path.exists()


def test_a_second_ctrl_c_while_the_runner_is_stopped_kills_it_and_prints_one_line(
    tmp_path: Path, env: dict[str, str], tiny_data: Path
) -> None:
    env["FAKE_RUNNER"] = "stubborn"  # ignores SIGTERM: only a kill stops it
    run = RunDir(tmp_path / "results" / "r")
    argv = ["run", "pytorch", "--data", str(tiny_data), "--results", str(run.path.parent)]
    proc = _start(CLI_DRIVER, [*argv, "--run-id", "r"], env, tmp_path)
    log = run.framework("pytorch").log
    _wait_for("READY", log, proc)
    runner_pid = int(log.read_text().split(", pid ", 1)[1].split()[0])

    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)  # the host is now waiting for the runner to stop
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)

    assert time.monotonic() - started < 10  # not the 30 s grace
    assert proc.returncode == 130
    assert "interrupted" in one_error_line(err)
    time.sleep(0.2)
    assert not _pid_alive(runner_pid)  # no orphaned runner
    assert read_metrics(run.framework("pytorch").metrics).status != "running"
    assert not run.lock_path.exists()
