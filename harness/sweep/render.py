"""The sweep's aggregate report: report.md and report.html, built as the study report's
own blocks (harness.report.model) and rendered by its renderers; stats.csv (every row of
every table, long form), stats.json (the same, for machines) and figures."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from harness.report import write_pages
from harness.report.figures import write_figures
from harness.report.model import (
    Block,
    Column,
    Facts,
    Figure,
    Paragraph,
    Report,
    Row,
    Section,
    StatusItem,
    StatusList,
    Table,
)
from harness.results import stats
from harness.sweep import figures
from harness.sweep.aggregate import DifferenceRow, LatencyRow, SweepStats
from harness.sweep.index import PointRecord, SweepDir, SweepSettings
from harness.sweep.plan import SweepSpec
from harness_contract.fs.atomic import write_text_atomic

# How each table column prints (harness.report.model.Column formats); others are text.
FORMATS = {
    "attempts": "count", "n": "count", "runs": "count", "batch": "count", "threads": "count",
    "comparisons tested in cell": "count", "contended runs left out": "count",
    "mean": "auto", "sd": "auto", "ci low": "auto", "ci high": "auto",
    "p50 ms (mean of runs' p50)": "auto", "ci low ms": "auto", "ci high ms": "auto",
    "p (paired t)": "p", "p (Holm)": "p",
}  # fmt: skip
READING = {
    "Points": "one row per point (a framework at a seed and grid cell): how it ended, on "
    "which node, its wall time and what it left on that node",
    "Over seeds: mean, sd and interval": "each figure over the seeds of one cell: mean, "
    "sample sd and the interval the head names, in the unit of its row",
    "Paired differences over seeds (top-1, percentage points)": "each comparison paired by "
    "seed within a cell: the mean difference and its interval, the paired-t p-value and "
    "verdict per comparison (unadjusted), then the Holm-adjusted ones across the cell",
    "Latency p50 over runs (the run is the unit)": "each row's p50 is the mean of its runs' "
    "own p50s, its interval over those runs (the basis column says which); hosts names the "
    "machines that timed them, and placement flags a row whose frameworks were timed on "
    "different hosts (compare it across frameworks as machines, not only frameworks)",
}


@dataclass(frozen=True)
class SweepReport:
    md: Path
    html: Path
    csv: Path
    json: Path
    figures: list[Path]


def write_report(
    sweep: SweepDir,
    spec: SweepSpec,
    settings: SweepSettings,
    records: dict[str, PointRecord],
    result: SweepStats,
) -> SweepReport:
    frames = _tables(records, result)
    figs = _figures(result)
    report = Report(
        f"Sweep `{sweep.path.name}`",
        _intro(spec, settings, result),
        _sections(frames, figs, result),
    )
    figure_paths = write_figures(figs, sweep.figures_dir)
    paths = SweepReport(
        sweep.report_md, sweep.report_html, sweep.stats_csv, sweep.stats_json, figure_paths,
    )  # fmt: skip
    write_pages(report, paths.md, paths.html)
    long = [
        df.assign(table=name) for name, df in frames.items() if name != "Points" and not df.empty
    ]
    csv = pd.concat(long, ignore_index=True) if long else pd.DataFrame()
    write_text_atomic(paths.csv, csv.to_csv(index=False))
    body = {"spec": spec.to_dict(), "settings": asdict(settings), **result.to_dict()}
    write_text_atomic(paths.json, json.dumps(body, indent=2) + "\n")
    return paths


def _intro(spec: SweepSpec, settings: SweepSettings, result: SweepStats) -> list[Block]:
    base = " + ".join(
        x
        for x in (
            spec.preset and f"preset {spec.preset}",
            spec.spec_file and f"spec {spec.spec_file}",
        )
        if x
    )
    grid = "; ".join(f"{k} in {json.dumps(v)}" for k, v in spec.grid.items()) or "none"
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.points.items()))
    where = (
        f"ray ({settings.address or 'a local Ray instance'})"
        if settings.executor == "ray"
        else f"local, {settings.parallel} at a time"
    )
    facts = Facts(
        "What ran",
        [
            ("Base", f"{base or 'defaults'}; fixed overrides: {', '.join(spec.sets) or 'none'}"),
            ("Frameworks", ", ".join(spec.frameworks)),
            ("Seeds", ", ".join(map(str, spec.seeds))),
            ("Grid", grid),
            ("Executor", f"{where}; {settings.threads} thread(s) per point"),
            ("Backend", settings.backend),
            ("Points", counts),
        ],
    )
    how = Paragraph(
        [
            f"Intervals are {result.confidence:.0%}. Top-1, agreement and training time: "
            "Student t over seeds (a percentage's interval is clipped to [0, 100] where the "
            "note says so). Latency p50: the run is the unit, the mean of the runs' own p50s "
            "with a Student-t interval over them; a cell with one run shows that run's own "
            "bootstrap, labelled within one run.",
            "Paired differences: t over seeds with the paired-t p-value; the verdict is per "
            f"comparison, unadjusted, and needs {stats.MIN_PAIRS} pairs with some spread; the "
            "Holm columns adjust across each cell's tested comparisons (statsmodels "
            "multipletests).",
            "Runs timed while the 1-minute load average exceeded their cores are left out of "
            f"latency ({_contended_count(result)}; listed under Contended runs), not of "
            "accuracy.",
        ]
    )
    return [facts, how]


def _contended_count(result: SweepStats) -> str:
    runs = {run for r in result.latency for run in r.excluded}
    return f"{len(runs)} such run{'s' * (len(runs) != 1)}" if runs else "none here"


def _num(value: float | None, digits: int = 2) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def _tables(records: dict[str, PointRecord], result: SweepStats) -> dict[str, pd.DataFrame]:
    points = pd.DataFrame(
        [
            {
                "point": r.name, "status": r.status, "attempts": r.attempts, "node": r.node or "",
                "wall s": _num(r.wall_s, 0), "left on node": _left(r), "reason": r.reason or "",
            }
            for r in records.values()
        ]
    )  # fmt: skip
    summary = pd.DataFrame(
        [
            {
                "framework": r.framework, "variant": r.variant, "cell": r.cell, "metric": r.metric,
                "unit": r.unit, "n": r.n, "mean": r.mean, "sd": r.sd,
                "ci low": r.low, "ci high": r.high, "interval note": r.note or "",
            }
            for r in result.summary
        ]
    )  # fmt: skip
    return {
        "Points": points,
        "Over seeds: mean, sd and interval": summary,
        "Paired differences over seeds (top-1, percentage points)": _differences(
            result.differences
        ),
        "Latency p50 over runs (the run is the unit)": _latency(result.latency),
    }


def _differences(rows: list[DifferenceRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "comparison": r.comparison, "within": r.within, "cell": r.cell,
                "metric": r.metric, "n": r.n, "mean": r.mean, "sd": r.sd,
                "ci low": r.low, "ci high": r.high, "interval note": r.note or "",
                "p (paired t)": r.p_value, "verdict (per comparison, unadjusted)": r.verdict,
                "p (Holm)": r.p_holm,
                "Holm verdict (across the cell's tested comparisons)":
                    r.holm_verdict or "not tested",
                "comparisons tested in cell": r.holm_family,
            }
            for r in rows
        ]
    )  # fmt: skip


def _latency(rows: list[LatencyRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "framework": r.framework, "variant": r.variant, "cell": r.cell,
                "batch": r.batch_size, "threads": r.threads, "runs": r.runs,
                "p50 ms (mean of runs' p50)": r.p50_ms,
                "ci low ms": r.low_ms, "ci high ms": r.high_ms, "interval basis": r.basis,
                "interval note": r.note or "", "contended runs left out": len(r.excluded),
                "hosts": ", ".join(r.hosts), "placement": r.placement or "",
            }
            for r in rows
        ]
    )  # fmt: skip


def _left(record: PointRecord) -> str:
    if not record.left_files:
        return ""
    size = f"{record.left_files} files, {record.left_bytes / 2**20:.1f} MiB"
    return f"{size} in {record.node}:{record.left_on_node}"


def _figures(result: SweepStats) -> list[Figure]:
    found = []
    cells = list(dict.fromkeys(r.cell for r in result.summary))
    for i, cell in enumerate(cells):
        svg = figures.accuracy_figure(result.summary, cell, result.confidence)
        found.append(Figure(f"accuracy-{i}", svg))
        rows = [r for r in result.latency if r.cell == cell]
        if rows:  # the smallest batch at the runs' own thread count: the headline latency
            first = min(rows, key=lambda r: (-r.threads, r.batch_size))
            svg = figures.latency_figure(
                result.latency, cell, first.batch_size, first.threads, result.confidence
            )
            found.append(Figure(f"latency-{i}-b{first.batch_size}", svg))
    return found


def _contended(result: SweepStats) -> list[str]:
    """One line per latency row that left runs out: where, and which runs at what load."""
    return [
        f"{r.framework} {r.variant} ({r.cell}), batch {r.batch_size}, {r.threads} "
        f"thread{'s' * (r.threads != 1)}: {', '.join(r.excluded)}"
        for r in result.latency
        if r.excluded
    ]


def _table(df: pd.DataFrame) -> Table:
    """A frame as a block table: each column printed as FORMATS says."""
    columns = [
        Column(str(c), format=FORMATS.get(str(c), "text"), align="right" if c in FORMATS else None)
        for c in df.columns
    ]
    rows = [Row([_value(v) for v in row]) for row in df.itertuples(index=False)]
    return Table(columns, rows, how_to_read="", empty="(none)", wide=len(columns) > 8)


def _value(value: object) -> object:
    return None if isinstance(value, str) and not value else value  # blank: the dash


def _sections(
    frames: dict[str, pd.DataFrame], figs: list[Figure], result: SweepStats
) -> list[Section]:
    sections = [
        Section(title, [_table(df)], how_to_read=READING.get(title)) for title, df in frames.items()
    ]
    if contended := _contended(result):
        items = [StatusItem(c) for c in contended]
        sections.append(Section("Contended runs, left out of latency", [StatusList(items, "")]))
    if figs:
        sections.append(Section("Figures", list(figs)))
    if result.problems:
        items = [StatusItem(p) for p in result.problems]
        sections.append(Section("Problems", [StatusList(items, "")]))
    return sections
