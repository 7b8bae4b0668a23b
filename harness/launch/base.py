"""A backend starts one framework's runner and says how it ended; nothing else.

Runners are identical whatever starts them (subprocess now, containers later):
same arguments, same output folder layout, same event stream on stdout.
"""

from __future__ import annotations

import contextlib
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from harness_contract import events
from harness_contract.exit_codes import ExitCode
from harness_contract.frameworks import Framework
from harness_contract.layout import FrameworkDir

EventSink = Callable[[dict[str, Any]], None]
Outcome = Literal["complete", "user_error", "crashed", "interrupted", "timed_out"]


@dataclass(frozen=True)
class LaunchRequest:
    framework: Framework
    spec_path: Path  # the resolved spec, already written into the run directory
    data_dir: Path
    out_dir: Path  # <run>/<framework>; the runner writes metrics.json, artifacts/ here
    run_id: str
    timeout_s: float | None = None
    # --allow-untested-versions, passed on to the runner (harness_contract.versions).
    allow_untested_versions: bool = False

    @property
    def out(self) -> FrameworkDir:
        return FrameworkDir(self.out_dir)

    @property
    def log_path(self) -> Path:
        return self.out.log


@dataclass(frozen=True)
class LaunchResult:
    framework: str
    outcome: Outcome
    exit_code: int | None
    message: str  # one line: what happened, and where to look
    log_path: Path


class Backend(ABC):
    name: str

    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """None when this backend can launch runners here, else why not (one line)."""

    @abstractmethod
    def launch(self, request: LaunchRequest, on_event: EventSink) -> LaunchResult:
        """Run the runner to the end (or timeout / Ctrl-C); never raises for a runner failure."""


INTERRUPTED = "interrupted; completed phases are kept"


class RunnerOutput:
    """What a backend does with each line a runner prints, wherever it runs: keep it in
    runner.log (flushed, so `tail -f` follows), hand events to the display, and remember
    the last plain lines and error events to explain a failure."""

    def __init__(self, log: IO[str], on_event: EventSink) -> None:
        self.log, self.on_event = log, on_event
        self.last: list[str] = []
        self.errors: list[str] = []
        self.log_error: OSError | None = None  # runner.log could not be written (disk full)
        self.running: str | None = None  # the step started and not yet ended ("phase ptq")
        self.finished: str | None = None  # the last step that ended

    def feed(self, line: str) -> None:
        self._keep(line)
        event = events.parse(line)
        if event is None:
            if line.strip():
                self.last.append(line.rstrip())
                del self.last[:-20]
            return
        if event.get("event") == "error":
            self.errors.append(str(event.get("message", "")))
        self._follow(event)
        self.on_event(event)

    def _follow(self, event: dict[str, Any]) -> None:
        """Which step the runner is in, from its events: what a crash is said to end."""
        step = _step(event)
        if step is None:
            return
        if event.get("state") == "start":
            self.running = step
        else:
            self.finished = step
            if self.running == step:
                self.running = None

    def where(self) -> str:
        """``during phase ptq``, ``after phase qat`` or ``before its first phase``."""
        if self.running:
            return f"during {self.running}"
        if self.finished:
            return f"after {self.finished}"
        return "before its first phase"

    def _keep(self, line: str) -> None:
        """Into runner.log, until it cannot be written: the runner is still followed (and
        drained, so it never blocks on a full pipe); its own error says what happened."""
        if self.log_error is not None:
            return
        try:
            self.log.write(line)
            self.log.flush()
        except OSError as exc:
            self.log_error = exc


def open_log(path: Path, first_line: str) -> IO[str]:
    """runner.log, opened to append and started with ``first_line``; an OS error (a full
    disk) is one line naming it: nothing has started yet."""
    from harness.cli.options import RESULTS_FIX
    from harness_contract.fs.oserrors import os_error

    try:
        log = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close_log
    except OSError as exc:
        raise os_error(exc, path, RESULTS_FIX) from None
    try:
        log.write(first_line)
        log.flush()
    except OSError as exc:
        close_log(log)
        raise os_error(exc, path, RESULTS_FIX) from None
    return log


def close_log(log: IO[str]) -> None:
    """Close runner.log; on a full disk its last lines are lost, never the run's ending."""
    with contextlib.suppress(OSError):
        log.close()


def result(
    request: LaunchRequest, outcome: Outcome, code: int | None, message: str
) -> LaunchResult:
    return LaunchResult(request.framework.name, outcome, code, message, request.log_path)


def timed_out_reason(timeout_s: float | None) -> str:
    """How a timeout is recorded in metrics.json and shown: never "interrupted"."""
    return f"timed out after {timeout_s or 0:.0f} s"


def timeout_message(request: LaunchRequest) -> str:
    return (
        f"{timed_out_reason(request.timeout_s)}; completed phases are kept; "
        "raise --timeout to allow more"
    )


def classify_exit(request: LaunchRequest, code: int, output: RunnerOutput) -> LaunchResult:
    """The runner contract's exit codes: 0 complete, 2 bad input (its error event says
    what), INTERRUPTED; a signal death (negative for a subprocess, 128+N in a
    container) or any other code is a crash, shown with the runner's last line."""
    if code == ExitCode.OK:
        return result(request, "complete", code, "complete")
    if code == ExitCode.USER_ERROR and output.errors:
        return result(request, "user_error", code, output.errors[-1])
    if code in (ExitCode.INTERRUPTED, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM):
        return result(request, "interrupted", code, INTERRUPTED)
    where = output.where()
    if code < 0 or code > 128:
        # Killed: whatever it printed last (a warning's tail, say) is no reason; the
        # signal and the step are. The log's last lines stay in the report as context.
        number = -code if code < 0 else code - 128
        how = f"exit code {code}, " if code > 0 else ""
        message = f"runner {how}killed by signal {number} ({_signal_name(number)}) {where}"
        if number == signal.SIGKILL:
            message += " (often the kernel's out-of-memory killer)"
        return result(request, "crashed", code, f"{message}; see {request.log_path.name}")
    tail = output.last[-1] if output.last else "no output"
    return result(
        request, "crashed", code, f"runner crashed (exit code {code}) {where}: {tail[:300]}"
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def _step(event: dict[str, Any]) -> str | None:
    """The study step an event starts or ends (None for progress within one)."""
    kind, phase = event.get("event"), event.get("phase")
    if kind == "phase":
        return f"phase {phase}"
    if kind == "rung":
        return f"phase {phase} on {event.get('runtime')}"
    if kind == "analysis":
        return f"the per-layer analysis of {phase}"
    if kind == "profile":
        return f"profiling {phase} ({event.get('trace')})"
    if kind == "support":
        return "the support probes"
    return None
