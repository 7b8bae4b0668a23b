"""Read a run's per-framework metrics.json files; a broken one is a problem, not a crash."""

from __future__ import annotations

from pathlib import Path

from harness_contract.errors import HarnessError
from harness_contract.metrics import MetricsFile, read_metrics

RUN_HINT = "run `harness compare` or `harness run FRAMEWORK` first"

# ---------------------------------------------------------------- collecting


def collect(run_dir: Path) -> tuple[list[MetricsFile], list[str]]:
    """Read every ``<run_dir>/*/metrics.json``; unreadable ones become one-line problems."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise HarnessError(
            f"run directory {run_dir} does not exist",
            f"pass a results/<run-id> directory, or {RUN_HINT}",
        )
    paths = sorted(run_dir.glob("*/metrics.json"))
    if not paths:
        raise HarnessError(f"no results in {run_dir}", RUN_HINT)
    metrics: list[MetricsFile] = []
    problems: list[str] = []
    for path in paths:
        try:
            metrics.append(read_metrics(path))
        except HarnessError as exc:  # one broken framework must not hide the others
            problems.append(f"{path.parent.name}: {exc.one_line()}")
    if not metrics:
        raise HarnessError(f"no readable results in {run_dir} ({'; '.join(problems)})", RUN_HINT)
    return sorted(metrics, key=lambda m: m.framework), problems
