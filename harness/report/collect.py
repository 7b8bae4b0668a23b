"""Read a run's per-framework metrics.json files; a broken one is a problem, not a crash."""

from __future__ import annotations

from pathlib import Path

from harness_contract.errors import HarnessError
from harness_contract.metrics import MetricsFile, read_metrics

RUN_HINT = "run `harness compare` or `harness run FRAMEWORK` first"
# runs.py moves an unfinished attempt aside as <framework>.incomplete-<n>: not a result.
SET_ASIDE_MARK = ".incomplete-"

# ---------------------------------------------------------------- collecting


def collect_files(run_dir: Path) -> tuple[list[tuple[Path, MetricsFile]], list[str]]:
    """Every readable ``<run_dir>/<framework>/metrics.json`` with its path, sorted by
    framework; unreadable ones become one-line problems. Attempts set aside by
    ``--resume`` are left out."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise HarnessError(
            f"run directory {run_dir} does not exist",
            f"pass a results/<run-id> directory, or {RUN_HINT}",
        )
    paths = sorted(p for p in run_dir.glob("*/metrics.json") if SET_ASIDE_MARK not in p.parent.name)
    if not paths:
        raise HarnessError(f"no results in {run_dir}", RUN_HINT)
    found: list[tuple[Path, MetricsFile]] = []
    problems: list[str] = []
    for path in paths:
        try:
            found.append((path, read_metrics(path)))
        except HarnessError as exc:  # one broken framework must not hide the others
            problems.append(f"{path.parent.name}: {exc.one_line()}")
    if not found:
        raise HarnessError(f"no readable results in {run_dir} ({'; '.join(problems)})", RUN_HINT)
    return sorted(found, key=lambda pm: pm[1].framework), problems


def collect(run_dir: Path) -> tuple[list[MetricsFile], list[str]]:
    """Read every ``<run_dir>/*/metrics.json``; unreadable ones become one-line problems."""
    found, problems = collect_files(run_dir)
    return [m for _, m in found], problems
