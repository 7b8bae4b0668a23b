"""support.md: a run's support matrix (the paper's Table IV, probed at the installed
versions), every framework side by side with the paper's claims, the versions, and what
each probe saw."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from harness.report.markdown import render_markdown
from harness.report.model import Facts, Paragraph, Report, Section, one_line
from harness.report.sections_support import support_table
from harness.results.support_matrix import (
    PAPER,
    FrameworkSupport,
    any_probed,
    bound_text,
    frameworks,
)
from harness.run.rundir import RunDir
from harness_contract.fs.atomic import write_text_atomic
from harness_contract.metrics import MetricsFile

NO_METRICS = "it left no readable metrics.json"


def render_support_md(
    metrics: Sequence[MetricsFile], failed: Sequence[tuple[str, str]] = ()
) -> str:
    """The whole file; ``failed``: (framework, why) for those without a metrics.json."""
    return render_markdown(support_report(frameworks(metrics, failed), metrics))


def support_report(fws: list[FrameworkSupport], metrics: Sequence[MetricsFile]) -> Report:
    """The report's support table (its versions in a section of their own here), then what
    each probe saw: report blocks, rendered by the report's markdown renderer."""
    run_ids = ", ".join(f"`{r}`" for r in dict.fromkeys(m.run_id for m in metrics))
    intro = Paragraph(
        [
            "Each capability of the paper's Table IV, probed by the harness at the installed "
            "versions on a tiny model, in a child process per framework with a bound per probe "
            f"({bound_text(fws) if any_probed(fws) else 'none ran'}). A cell is **yes**, "
            "**no** with the error or reason seen, **not probed** with why (say, no GPU), "
            "**timed out** at the bound, or — when the framework has no support data. The "
            f"last columns say what {PAPER} reported for the same item, at the versions of "
            "its day."
        ]
    )
    table = replace(support_table(fws), notes=[])
    sections = [
        Section("Versions", [Paragraph(["\n".join(_versions(f) for f in fws)])]),
        Section("What each probe saw", [_details(f) for f in fws if f.matrix is not None]),
    ]
    return Report(f"Support matrix — run {run_ids}", [intro, table], sections)


def _versions(f: FrameworkSupport) -> str:
    if f.matrix is None:
        return f"- **{f.name}**: {f.versions}"
    n = len(f.matrix.probes)
    return f"- **{f.name}**: {f.versions} ({n} probes in {f.seconds:.1f} s)"


def _details(f: FrameworkSupport) -> Facts:
    assert f.matrix is not None
    items = []
    for p in f.matrix.probes:
        took = f", {p.seconds:.1f} s" if p.seconds is not None else ""
        detail = one_line(p.detail) if p.detail else "no detail recorded"
        items.append((f"`{p.probe}` ({p.outcome}{took})", detail))
    return Facts(f.name, items)


def write_support_md(run_path: Path, metrics: list[MetricsFile]) -> Path | None:
    """Write ``<run>/support.md`` atomically; None (and no file) when no framework of the
    run has support data, so a run with the probes switched off gets none. A framework
    the run was started for that left no readable metrics.json gets a column of —."""
    if not any(m.support is not None for m in metrics):
        return None
    run = RunDir(Path(run_path))
    named = set(run.asked_frameworks()) | set(run.framework_names())
    failed = [(n, NO_METRICS) for n in sorted(named - {m.framework for m in metrics})]
    write_text_atomic(run.support_md, render_support_md(metrics, failed))
    return run.support_md
