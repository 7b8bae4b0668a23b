"""Read a run's per-framework results: what the report, the summary and ``harness traces`` see.

A broken metrics.json is a problem that names its file, not a crash, and a framework
folder the host made but whose runner left no metrics.json is a failed framework
with the tail of its runner.log, never a framework quietly left out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from harness.run.rundir import RunDir
from harness_contract.errors import HarnessError
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import MetricsFile, read_metrics

RUN_HINT = "run `harness compare` or `harness run FRAMEWORK` first"
LOG_TAIL_LINES = 10
LOG_LINE_CHARS = 300  # a progress bar redrawn in place is one enormous line


@dataclass(frozen=True)
class FailedFramework:
    """A framework whose runner stopped before writing metrics.json."""

    name: str
    log: Path
    log_tail: list[str]  # its runner.log's last lines (empty: no log, or an empty one)

    STOPPED = "the runner stopped before writing metrics.json"

    @property
    def reason(self) -> str:
        if not self.log.parent.is_dir():
            return f"it never started (no {self.name}/ folder; the run's output says why)"
        where = "its runner.log is empty" if self.log.is_file() else "it left no runner.log"
        if self.log_tail:
            where = f"last line of {self.name}/{self.log.name}: {self.log_tail[-1]}"
        return f"{self.STOPPED} ({where})"


@dataclass(frozen=True)
class RunResults:
    run_dir: RunDir
    found: list[tuple[FrameworkDir, MetricsFile]]  # readable, sorted by framework
    failed: list[FailedFramework] = field(default_factory=list)  # no metrics.json at all
    problems: list[str] = field(default_factory=list)  # unreadable metrics.json, one line each

    @property
    def metrics(self) -> list[MetricsFile]:
        return [m for _, m in self.found]


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last non-blank lines of a log (a runner killed mid-line leaves no newline)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            kept = deque((line.rstrip() for line in f if line.strip()), maxlen=lines)
    except OSError:
        return []
    return [line if len(line) <= LOG_LINE_CHARS else line[:LOG_LINE_CHARS] + "…" for line in kept]


def read_run(run_dir: Path) -> RunResults:
    """Every framework of a run: readable metrics.json files sorted by framework, unreadable
    ones as one-line problems naming the file, folders without one as failed frameworks.
    Attempts set aside by ``--resume`` are left out."""
    run = RunDir(Path(run_dir))
    if not run.path.is_dir():
        raise HarnessError(
            f"run directory {run.path} does not exist",
            f"pass a results/<run-id> directory, or {RUN_HINT}",
        )
    found: list[tuple[FrameworkDir, MetricsFile]] = []
    failed: list[FailedFramework] = []
    problems: list[str] = []
    # A framework the run was started for but that left no folder is failed too.
    for name in sorted({*run.framework_names(), *run.asked_frameworks()}):
        fw = run.framework(name)
        if not fw.metrics.is_file():
            failed.append(FailedFramework(name, fw.log, log_tail(fw.log)))
            continue
        try:
            found.append((fw, read_metrics(fw.metrics)))
        except HarnessError as exc:  # one broken framework must not hide the others
            problems.append(f"{name}: {exc.one_line()}")
    if not found and not problems:
        # Say why where a log can tell: "Killed" reads differently from an empty folder.
        why = "; ".join(f"{f.name}: {f.reason}" for f in failed if f.log_tail)
        raise HarnessError(f"no results in {run.path}" + (f" ({why})" if why else ""), RUN_HINT)
    if not found:
        raise HarnessError(f"no readable results in {run.path} ({'; '.join(problems)})", RUN_HINT)
    found.sort(key=lambda fm: fm[1].framework)
    return RunResults(run, found, failed, problems)


def collect(run_dir: Path) -> tuple[list[MetricsFile], list[str]]:
    """Read every ``<run_dir>/*/metrics.json``; unreadable ones become one-line problems."""
    results = read_run(run_dir)
    return results.metrics, results.problems
