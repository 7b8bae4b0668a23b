"""The embedded default: each runner is a subprocess of the current Python interpreter."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

from harness_contract import events

from .base import Backend, EventSink, LaunchRequest, LaunchResult

# How long an interrupted runner gets to save its completed phases before it is killed.
GRACE_S = 30.0


class LocalBackend(Backend):
    name = "local"

    def unavailable_reason(self) -> str | None:
        return None

    def runner_missing(self, module: str) -> bool:
        return importlib.util.find_spec(module) is None

    def launch(self, request: LaunchRequest, on_event: EventSink) -> LaunchResult:
        fw = request.framework
        if self.runner_missing(fw.runner_module):
            return self._result(
                request,
                "user_error",
                None,
                f"the {fw.name} runner is not installed here; {fw.install_hint}",
            )
        request.out_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            fw.runner_module,
            "--spec",
            str(request.spec_path),
            "--data",
            str(request.data_dir),
            "--out",
            str(request.out_dir),
            "--run-id",
            request.run_id,
            "--runtime",
            f"local ({sys.executable})",
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(request.log_path, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            # Its own session: a Ctrl-C reaches the host only, which then stops the
            # runner with SIGTERM and gives it time to save what it finished.
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            return self._supervise(proc, request, log, on_event)

    def _supervise(
        self,
        proc: subprocess.Popen,
        request: LaunchRequest,
        log,
        on_event: EventSink,
    ) -> LaunchResult:
        last_lines: list[str] = []
        errors: list[str] = []
        reader = threading.Thread(
            target=self._pump, daemon=True, args=(proc, log, on_event, last_lines, errors)
        )
        reader.start()
        deadline = time.monotonic() + request.timeout_s if request.timeout_s else None
        try:
            while proc.poll() is None:
                if deadline and time.monotonic() > deadline:
                    self._stop(proc)
                    reader.join(5)
                    return self._result(
                        request,
                        "timed_out",
                        proc.returncode,
                        f"timed out after {request.timeout_s:.0f} s; completed "
                        f"phases are kept; raise --timeout to allow more",
                    )
                time.sleep(0.1)
        except KeyboardInterrupt:
            self._stop(proc)
            reader.join(5)
            return self._result(
                request, "interrupted", proc.returncode, "interrupted; completed phases are kept"
            )
        reader.join(5)
        return self._classify(request, proc.returncode, errors, last_lines)

    @staticmethod
    def _pump(
        proc: subprocess.Popen, log, on_event: EventSink, last: list[str], errors: list[str]
    ) -> None:
        for line in _lines(proc):
            log.write(line)
            log.flush()  # so `tail -f runner.log` follows a long run
            event = events.parse(line)
            if event is None:
                if line.strip():
                    last.append(line.rstrip())
                    del last[:-20]
                continue
            if event.get("event") == "error":
                errors.append(str(event.get("message", "")))
            on_event(event)
        log.flush()

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _classify(
        self, request: LaunchRequest, code: int, errors: list[str], last: list[str]
    ) -> LaunchResult:
        if code == 0:
            return self._result(request, "complete", code, "complete")
        if code == 2 and errors:
            return self._result(request, "user_error", code, errors[-1])
        if code in (130, -signal.SIGINT, -signal.SIGTERM):
            return self._result(
                request, "interrupted", code, "interrupted; completed phases are kept"
            )
        tail = last[-1] if last else "no output"
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return self._result(request, "crashed", code, f"runner crashed ({how}): {tail[:300]}")

    @staticmethod
    def _result(request: LaunchRequest, outcome, code, message: str) -> LaunchResult:
        return LaunchResult(request.framework.name, outcome, code, message, request.log_path)


def _die_with_parent() -> None:
    """Linux: SIGTERM the runner if the host dies (even by SIGKILL), so no study is orphaned."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _lines(proc: subprocess.Popen) -> Iterator[str]:
    assert proc.stdout is not None
    yield from proc.stdout
