"""A backend starts one framework's runner and says how it ended; nothing else.

Runners are identical whatever starts them (subprocess now, containers later):
same arguments, same output folder layout, same event stream on stdout.
"""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from harness_contract import events
from harness_contract.layout import FrameworkDir

from ..frameworks import FrameworkEntry

EventSink = Callable[[dict[str, Any]], None]
Outcome = Literal["complete", "user_error", "crashed", "interrupted", "timed_out"]


@dataclass(frozen=True)
class LaunchRequest:
    framework: FrameworkEntry
    spec_path: Path  # the resolved spec, already written into the run directory
    data_dir: Path
    out_dir: Path  # <run>/<framework>; the runner writes metrics.json, artifacts/ here
    run_id: str
    timeout_s: float | None = None

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

    def feed(self, line: str) -> None:
        self.log.write(line)
        self.log.flush()
        event = events.parse(line)
        if event is None:
            if line.strip():
                self.last.append(line.rstrip())
                del self.last[:-20]
            return
        if event.get("event") == "error":
            self.errors.append(str(event.get("message", "")))
        self.on_event(event)


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
    what), 130 interrupted; a signal death (negative for a subprocess, 128+N in a
    container) or any other code is a crash, shown with the runner's last line."""
    if code == 0:
        return result(request, "complete", code, "complete")
    if code == 2 and output.errors:
        return result(request, "user_error", code, output.errors[-1])
    if code in (130, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM):
        return result(request, "interrupted", code, INTERRUPTED)
    tail = output.last[-1] if output.last else "no output"
    if code < 0:
        how = f"killed by signal {-code}"
    elif code > 128:
        how = f"exit code {code}, killed by signal {code - 128}"
    else:
        how = f"exit code {code}"
    return result(request, "crashed", code, f"runner crashed ({how}): {tail[:300]}")
