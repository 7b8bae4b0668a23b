"""Turn a run's per-framework ``metrics.json`` files into results.csv, report.md,
a self-contained report.html and figures/*.svg.

Imports pandas and the shared contract only: the report must render on a host with
no framework installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness_contract.atomic import write_text_atomic

from ..traces import trace_entries
from .collect import collect, collect_files
from .figures import write_figures
from .frame import results_frame
from .html import render_html
from .markdown import markdown_table, render_markdown
from .profiles import pass_breakdowns

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
    found, problems = collect_files(run_dir)
    metrics = [m for _, m in found]
    frame = results_frame(metrics)
    # Traces are checked on disk here, so the report says which recorded ones are gone.
    traces = [e for path, m in found for e in trace_entries(m, path.parent, path.parent.name)]
    csv, md, html = run_dir / "results.csv", run_dir / "report.md", run_dir / "report.html"
    write_text_atomic(csv, frame.to_csv(index=False))
    write_text_atomic(md, render_markdown(metrics, frame, problems, traces))
    write_text_atomic(html, render_html(metrics, frame, problems, traces))
    figures = write_figures(frame, run_dir, pass_breakdowns(metrics))
    return ReportPaths(csv=csv, md=md, html=html, figures=figures)
