"""Turn a run's per-framework ``metrics.json`` files into results.csv, report.md,
a self-contained report.html and figures/*.svg.

The report is built once (build.py) as format-neutral sections (model.py) from one
typed table per variant and one long latency table (frame.py); markdown.py and html.py
only render it. Imports pandas and the shared contract only: the report must render on
a host with no framework installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.report.build import build_report
from harness.report.figures import write_figures
from harness.report.frame import ReportData, results_frame
from harness.report.html import render_html
from harness.report.markdown import markdown_table, render_markdown
from harness.report.model import Report
from harness.report.support_md import write_support_md
from harness.results.run_metrics import collect, read_run
from harness.run.rundir import RunDir
from harness_contract.errors import HarnessError
from harness_contract.fs.atomic import write_text_atomic

__all__ = [
    "ReportData",
    "ReportPaths",
    "build_report",
    "collect",
    "markdown_table",
    "render_html",
    "render_markdown",
    "results_frame",
    "write_pages",
    "write_report",
]


@dataclass(frozen=True)
class ReportPaths:
    csv: Path
    md: Path
    html: Path
    figures: list[Path]
    # metrics.json files that could not be read, one line each naming the file: the report
    # was written without them, and the command that asked for it must not end in success.
    problems: list[str] = field(default_factory=list)

    def raise_for_problems(self) -> None:
        """A HarnessError naming every unreadable metrics.json, if there is any."""
        if self.problems:
            raise HarnessError(
                f"{len(self.problems)} metrics.json file(s) could not be read, so the report "
                f"leaves them out: {'; '.join(self.problems)}",
                f"the report for the readable frameworks is in {self.md.parent}",
            )


def write_pages(report: Report, md: Path, html: Path) -> None:
    """Any report (a study's, a sweep's, a reproduction's) as markdown and a self-contained
    HTML page, each written atomically."""
    write_text_atomic(md, render_markdown(report))
    write_text_atomic(html, render_html(report))


def write_report(run_dir: Path) -> ReportPaths:
    """Write results.csv, report.md, report.html and figures/*.svg, each atomically.

    Unreadable metrics.json files do not stop the report: they are shown in it and
    returned as ``problems`` (see ``ReportPaths.raise_for_problems``).
    """
    run = RunDir(Path(run_dir))
    data = ReportData.from_results(read_run(run.path))
    report = build_report(data)
    write_text_atomic(run.results_csv, data.csv.to_csv(index=False))
    write_pages(report, run.report_md, run.report_html)
    figures = write_figures(report.figures(), run.figures_dir)
    write_support_md(run.path, data.metrics)
    return ReportPaths(
        run.results_csv, run.report_md, run.report_html, figures, list(data.problems)
    )
