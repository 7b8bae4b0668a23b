"""The embedded default: each runner is a subprocess of the current Python interpreter."""

from __future__ import annotations

import importlib.util
import os
import shlex
import signal
import subprocess
import sys
import threading
from typing import IO

from harness.launch.base import (
    INTERRUPTED,
    Backend,
    EventSink,
    LaunchRequest,
    LaunchResult,
    RunnerOutput,
    classify_exit,
    close_log,
    open_log,
    result,
    timeout_message,
)
from harness.launch.process import GRACE_S, die_with_parent, stop_process, wait_until
from harness_contract.entrypoint import runner_command


class LocalBackend(Backend):
    name = "local"

    def unavailable_reason(self) -> str | None:
        return None

    def runner_missing(self, module: str) -> bool:
        return importlib.util.find_spec(module) is None

    def launch(self, request: LaunchRequest, on_event: EventSink) -> LaunchResult:
        fw = request.framework
        if self.runner_missing(fw.runner_module):
            return result(
                request,
                "user_error",
                None,
                f"the {fw.name} runner is not installed here; {fw.install_hint}",
            )
        request.out_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", fw.runner_module]
        cmd += runner_command(
            request.spec_path,
            request.data_dir,
            request.out_dir,
            request.run_id,
            f"local ({sys.executable})",
            allow_untested_versions=request.allow_untested_versions,
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log = open_log(request.log_path, f"$ {shlex.join(cmd)}\n")  # pasteable, to rerun by hand
        try:
            # Its own session: a Ctrl-C reaches the host only, which then stops the
            # runner with SIGTERM and gives it time to save what it finished.
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",  # a stray byte must not stop the pump
                bufsize=1,
                env=env,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
            return self._supervise(proc, request, log, on_event)
        finally:
            close_log(log)

    def _supervise(
        self, proc: subprocess.Popen, request: LaunchRequest, log: IO[str], on_event: EventSink
    ) -> LaunchResult:
        output = RunnerOutput(log, on_event)
        reader = threading.Thread(target=self._pump, args=(proc, output), daemon=True)
        reader.start()
        try:
            if not wait_until(lambda: proc.poll() is not None, request.timeout_s):
                stop_process(proc, signal.SIGTERM, GRACE_S)
                reader.join(5)
                return result(request, "timed_out", proc.returncode, timeout_message(request))
        except KeyboardInterrupt:
            stop_process(proc, signal.SIGTERM, GRACE_S)
            reader.join(5)
            return result(request, "interrupted", proc.returncode, INTERRUPTED)
        reader.join(5)
        return classify_exit(request, proc.returncode, output)

    @staticmethod
    def _pump(proc: subprocess.Popen, output: RunnerOutput) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.feed(line)
