"""Turn a run's per-framework ``metrics.json`` files into results.csv, report.md,
a self-contained report.html and figures/*.svg.

Imports pandas and the shared contract only: the report must render on a host with
no framework installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness_contract.atomic import write_text_atomic

from .collect import collect
from .figures import write_figures
from .frame import results_frame
from .html import render_html
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
    html: Path
    figures: list[Path]


def write_report(run_dir: Path) -> ReportPaths:
    """Write results.csv, report.md, report.html and figures/*.svg, each atomically."""
    run_dir = Path(run_dir)
    metrics, problems = collect(run_dir)
    frame = results_frame(metrics)
    csv, md, html = run_dir / "results.csv", run_dir / "report.md", run_dir / "report.html"
    write_text_atomic(csv, frame.to_csv(index=False))
    write_text_atomic(md, render_markdown(metrics, frame, problems))
    write_text_atomic(html, render_html(metrics, frame, problems))
    return ReportPaths(csv=csv, md=md, html=html, figures=write_figures(frame, run_dir))
