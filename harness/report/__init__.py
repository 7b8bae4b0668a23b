"""Turn a run's per-framework ``metrics.json`` files into ``results.csv`` and ``report.md``.

Imports pandas and the shared contract only: the report must render on a host with
no framework installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness_contract.atomic import write_text_atomic

from .collect import collect
from .frame import results_frame
from .markdown import markdown_table, render_markdown

__all__ = [
    "ReportPaths",
    "collect",
    "markdown_table",
    "render_markdown",
    "results_frame",
    "write_report",
]


@dataclass(frozen=True)
class ReportPaths:
    csv: Path
    md: Path


def write_report(run_dir: Path) -> ReportPaths:
    """Write ``results.csv`` and ``report.md`` into the run directory, atomically."""
    run_dir = Path(run_dir)
    metrics, problems = collect(run_dir)
    frame = results_frame(metrics)
    paths = ReportPaths(csv=run_dir / "results.csv", md=run_dir / "report.md")
    write_text_atomic(paths.csv, frame.to_csv(index=False))
    write_text_atomic(paths.md, render_markdown(metrics, frame, problems))
    return paths
