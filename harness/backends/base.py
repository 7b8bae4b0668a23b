"""A backend starts one framework's runner and says how it ended; nothing else.

Runners are identical whatever starts them (subprocess now, containers later):
same arguments, same output folder layout, same event stream on stdout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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
    def log_path(self) -> Path:
        return self.out_dir / "runner.log"


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
