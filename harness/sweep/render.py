"""The sweep's aggregate report: report.md and report.html (the same tables), stats.csv
(every row of every table, long form), stats.json (the same, for machines) and figures."""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from harness.report.html import page
from harness.report.markdown import markdown_table
from harness.results import stats
from harness.sweep import figures
from harness.sweep.aggregate import DifferenceRow, LatencyRow, SweepStats
from harness.sweep.index import PointRecord, SweepDir, SweepSettings
from harness.sweep.plan import SweepSpec
from harness_contract.fs.atomic import write_bytes_atomic

NA = "n/a"


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
    tables = _tables(records, result)
    figure_paths = _figures(sweep, result)
    head = _head(sweep, spec, settings, result)
    paths = SweepReport(
        sweep.report_md, sweep.report_html, sweep.stats_csv, sweep.stats_json, figure_paths,
    )  # fmt: skip
    _write(paths.md, _markdown(sweep, head, tables, figure_paths, result))
    _write(paths.html, _html(sweep, head, tables, figure_paths, result))
    long = [
        df.assign(table=name) for name, df in tables.items() if name != "Points" and not df.empty
    ]
    csv = pd.concat(long, ignore_index=True) if long else pd.DataFrame()
    _write(paths.csv, csv.to_csv(index=False))
    body = {"spec": spec.to_dict(), "settings": asdict(settings), **result.to_dict()}
    _write(paths.json, json.dumps(body, indent=2) + "\n")
    return paths


def _write(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def _head(
    sweep: SweepDir, spec: SweepSpec, settings: SweepSettings, result: SweepStats
) -> list[str]:
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
    return [
        f"Base: {base or 'defaults'}; fixed overrides: {', '.join(spec.sets) or 'none'}",
        f"Frameworks: {', '.join(spec.frameworks)}; "
        f"seeds: {', '.join(map(str, spec.seeds))}; grid: {grid}",
        f"Executor: {where}; {settings.threads} thread(s) per point; backend {settings.backend}",
        f"Points: {counts}. Intervals are {result.confidence:.0%}. Top-1, agreement and "
        "training time: Student t over seeds (a percentage's interval is clipped to [0, 100] "
        "where the note says so). Latency p50: the run is the unit, the mean of the runs' own "
        "p50s with a Student-t interval over them; a cell with one run shows that run's own "
        "bootstrap, labelled within one run.",
        "Paired differences: t over seeds with the paired-t p-value; the verdict is per "
        f"comparison, unadjusted, and needs {stats.MIN_PAIRS} pairs with some spread; the Holm "
        "columns adjust across each cell's tested comparisons (statsmodels multipletests).",
        "Runs timed while the 1-minute load average exceeded their cores are left out of "
        f"latency ({_contended_count(result)}; listed under Contended runs), not of accuracy.",
    ]


def _contended_count(result: SweepStats) -> str:
    runs = {run for r in result.latency for run in r.excluded}
    return f"{len(runs)} such run{'s' * (len(runs) != 1)}" if runs else "none here"


def _num(value: float | None, digits: int = 2) -> str:
    return NA if value is None else f"{value:.{digits}f}"


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
            }
            for r in rows
        ]
    )  # fmt: skip


def _left(record: PointRecord) -> str:
    if not record.left_files:
        return ""
    size = f"{record.left_files} files, {record.left_bytes / 2**20:.1f} MiB"
    return f"{size} in {record.node}:{record.left_on_node}"


def _figures(sweep: SweepDir, result: SweepStats) -> list[Path]:
    folder = sweep.figures_dir
    folder.mkdir(exist_ok=True)
    paths = []
    cells = list(dict.fromkeys(r.cell for r in result.summary))
    for i, cell in enumerate(cells):
        path = folder / f"accuracy-{i}.svg"
        _write(path, figures.accuracy_figure(result.summary, cell, result.confidence))
        paths.append(path)
        rows = [r for r in result.latency if r.cell == cell]
        if rows:  # the smallest batch at the runs' own thread count: the headline latency
            first = min(rows, key=lambda r: (-r.threads, r.batch_size))
            path = folder / f"latency-{i}-b{first.batch_size}.svg"
            _write(
                path,
                figures.latency_figure(
                    result.latency, cell, first.batch_size, first.threads, result.confidence
                ),
            )
            paths.append(path)
    return paths


def _contended(result: SweepStats) -> list[str]:
    """One line per latency row that left runs out: where, and which runs at what load."""
    return [
        f"{r.framework} {r.variant} ({r.cell}), batch {r.batch_size}, {r.threads} "
        f"thread{'s' * (r.threads != 1)}: {', '.join(r.excluded)}"
        for r in result.latency
        if r.excluded
    ]


def _cell_text(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return NA
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.001:  # a small p-value keeps its digits
            return f"{value:.2g}"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def _md_table(df: pd.DataFrame) -> list[str]:
    if df.empty:
        return ["(none)"]
    rows = [[_cell_text(v) for v in row] for row in df.itertuples(index=False)]
    return [markdown_table([str(c) for c in df.columns], rows)]


def _markdown(
    sweep: SweepDir,
    head: list[str],
    tables: dict[str, pd.DataFrame],
    figs: list[Path],
    result: SweepStats,
) -> str:
    out = [f"# Sweep {sweep.path.name}", "", *(f"- {line}" for line in head), ""]
    for title, df in tables.items():
        out += [f"## {title}", "", *_md_table(df), ""]
    if contended := _contended(result):
        out += ["## Contended runs, left out of latency", ""] + [f"- {c}" for c in contended]
        out += [""]
    if figs:
        out += ["## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in figs] + [""]
    if result.problems:
        out += ["## Problems", ""] + [f"- {p}" for p in result.problems] + [""]
    return "\n".join(out)


def _html(
    sweep: SweepDir,
    head: list[str],
    tables: dict[str, pd.DataFrame],
    figs: list[Path],
    result: SweepStats,
) -> str:
    esc = html.escape
    body = [
        f"<h1>Sweep {esc(sweep.path.name)}</h1>",
        "<ul>",
        *(f"<li>{esc(line)}</li>" for line in head),
        "</ul>",
    ]
    for title, df in tables.items():
        body.append(f"<h2>{esc(title)}</h2>")
        if df.empty:
            body.append("<p>(none)</p>")
            continue
        shown = df.map(_cell_text)
        body.append(shown.to_html(index=False, escape=True, border=0))
    if contended := _contended(result):
        body += ["<h2>Contended runs, left out of latency</h2>", "<ul>"]
        body += [f"<li>{esc(c)}</li>" for c in contended] + ["</ul>"]
    if figs:
        body.append("<h2>Figures</h2>")
        body += [p.read_text() for p in figs]  # inline SVG: the page stands alone
    if result.problems:
        body += [
            "<h2>Problems</h2>",
            "<ul>",
            *(f"<li>{esc(p)}</li>" for p in result.problems),
            "</ul>",
        ]
    return page(f"Sweep {sweep.path.name}", body)
