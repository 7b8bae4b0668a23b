"""report.html: the same sections as report.md, as one self-contained page.

Inline CSS and inline SVG figures only — no scripts, fonts or URLs — so the file opens
offline, in a CI artifact viewer or attached to an e-mail, and shows exactly what was run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

import pandas as pd

from harness_contract.metrics import MetricsFile

from ..traces import TraceEntry, trace_entries
from . import figures as fig
from .markdown import (
    TRAINING_EXPLAINED,
    Table,
    _absent,
    _device_notes,
    _load_notes,
    _mismatch_warnings,
    _one_line,
    _rows,
    accuracy_table,
    breakdown_table,
    calibration_table,
    latency_sweep_notes,
    latency_sweep_table,
    latency_table,
    memory_table,
    provenance_items,
    size_table,
    top_ops_table,
    traces_table,
    training_table,
)
from .profiles import PassBreakdown, pass_breakdowns

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
  color: #1d1d1f; background: #fafafa; margin: 0; line-height: 1.45; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .4rem; padding-bottom: .25rem;
  border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .3rem; }
p.how { color: #555; font-size: .9rem; margin: .2rem 0 .8rem; max-width: 70em; }
code { font-family: ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace;
  font-size: .85em; background: #f0f0f0; padding: 0 .25em; border-radius: 3px; }
.warn { background: #fff4e0; border-left: 4px solid #e69f00; padding: .5rem .8rem;
  margin: .5rem 0; }
.bad { background: #fdecea; border-left: 4px solid #d55e00; padding: .5rem .8rem;
  margin: .5rem 0; }
.ok { background: #e8f5ee; border-left: 4px solid #009e73; padding: .5rem .8rem; }
ul.status { padding-left: 1.2rem; }
.pair { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
div.tbl { overflow-x: auto; max-width: 100%; }
.pair > .tbl { flex: 1 1 560px; }
.pair.wide > .tbl { flex-basis: 100%; }
figure { margin: 0; flex: 0 1 500px; }
figure.wide { flex: 0 1 860px; }
figure svg { width: 100%; height: auto; border: 1px solid #e3e3e3; border-radius: 4px; }
table { border-collapse: collapse; font-size: .85rem; background: #fff; }
th, td { border: 1px solid #ddd; padding: .3rem .55rem; }
th { background: #f3f4f6; text-align: left; vertical-align: bottom; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.failed td, tr.missing td { background: #fdecea; }
tr.skipped td, tr.unavailable td { background: #fff8e6; }
dl.prov { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem;
  font-size: .9rem; margin: 0; }
dl.prov dt { font-weight: 600; color: #444; }
dl.prov dd { margin: 0; overflow-wrap: anywhere; }
"""

# Headers whose cells hold numbers: right-aligned so digits line up.
_NUMERIC_HINTS = (
    "(%)",
    "(MiB)",
    "(s)",
    "(s/epoch)",
    "(ms)",
    "(count)",
    "(n)",
    "(images",
    "/s)",
    "(x)",
)


# ---------------------------------------------------------------- building blocks


def _md_inline(text: str) -> str:
    """markdown.py's notes carry **bold** and `code`: escape first, then map those two marks.

    Reusing its sentences keeps report.md and report.html saying the same thing.
    """
    text = text.removeprefix("> ").strip()
    if text.startswith("**") and text.endswith("**") and text.count("**") == 2:
        text = text[2:-2]  # a wholly bold note reads as a wall of bold; the box marks it already
    html = escape(text)
    html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html)


def _is_numeric(header: str) -> bool:
    return any(hint in header for hint in _NUMERIC_HINTS)


def html_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] = ()
) -> str:
    """An HTML table; every cell escaped, number columns right-aligned."""
    numeric = [_is_numeric(h) for h in headers]
    head = "".join(f"<th scope='col'>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f" class='{escape(row_classes[i])}'" if i < len(row_classes) else ""
        cells = "".join(
            f"<td class='num'>{escape(str(c))}</td>" if numeric[j] else f"<td>{escape(str(c))}</td>"
            for j, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _section(title: str, how: str, *parts: str) -> str:
    inner = "\n".join(parts)
    heading = f"<h2>{escape(title)}</h2>\n<p class='how'>{escape(how)}</p>"
    return f"<section>\n{heading}\n{inner}\n</section>"


def _pair(table: str, *svgs: str, wide: bool = False) -> str:
    """Table and its figure(s) side by side; they wrap below each other on narrow screens.

    ``wide`` tables (8+ columns of long headers) would scroll beside a figure, so they take
    the full width and the figure follows underneath.
    """
    figs = "".join(f"<figure>{svg}</figure>" for svg in svgs)
    cls = "pair wide" if wide else "pair"
    return f"<div class='{cls}'><div class='tbl'>{table}</div>{figs}</div>"


def _notes(notes: Sequence[str], css: str = "warn") -> str:
    return "".join(f"<div class='{css}'>{_md_inline(n)}</div>" for n in notes)


def _table(t: Table) -> str:
    return html_table(t.headers, t.rows, [_status_class(r) for r in t.sources])


def _how(t: Table) -> str:
    return t.how[:1].upper() + t.how[1:]


def _status_class(row: pd.Series | None) -> str:
    return "" if row is None or row["status"] == "ok" else str(row["status"])


# ---------------------------------------------------------------- sections


def _title(metrics: list[MetricsFile]) -> str:
    first = metrics[0]
    run_ids = ", ".join(dict.fromkeys(m.run_id for m in metrics))
    frameworks = ", ".join(f"{m.framework} ({m.status})" for m in metrics)
    lines = [
        f"<h1>Quantization comparison — run {escape(run_ids)}</h1>",
        f"<p>Spec <code>{escape(first.spec_name)}</code> (digest "
        f"<code>{escape(first.spec_digest)}</code>), seed {escape(str(first.seed))}, dataset kind "
        f"<strong>{escape(first.dataset.kind)}</strong> (<code>{escape(first.dataset.path)}</code>)"
        f". Frameworks: {escape(frameworks)}.</p>",
    ]
    return "\n".join(lines)


def _warnings(metrics: list[MetricsFile], frame: pd.DataFrame) -> str:
    """Everything that makes a number unfair to compare, at the top where it cannot be missed."""
    notes = list(_mismatch_warnings(metrics))
    synthetic = [m.framework for m in metrics if m.dataset.kind == "synthetic"]
    if synthetic:
        notes.append(
            f"**Warning — synthetic data ({', '.join(synthetic)}):** accuracy figures are not "
            "meaningful on synthetic data. Sizes and timings still describe the model and the "
            "machine."
        )
    return _notes(notes)


def _status(metrics: list[MetricsFile], frame: pd.DataFrame, problems: Sequence[str]) -> str:
    items = [f"<strong>unreadable</strong> {escape(p)} — left out of every table" for p in problems]
    for m in metrics:
        if m.status != "complete":
            error = f": {escape(_one_line(m.error))}" if m.error else ""
            items.append(f"<strong>{escape(m.framework)}</strong> run is {escape(m.status)}{error}")
    for row in _rows(frame):
        if row["status"] != "ok":
            reason = "no reason recorded" if _absent(row["reason"]) else _one_line(row["reason"])
            items.append(
                f"<strong>{escape(row['framework'])} / {escape(row['variant'])}</strong> "
                f"{escape(str(row['status']))}: {escape(reason)}"
            )
    if not items:
        body = "<p class='ok'>All frameworks complete; every variant ok.</p>"
    else:
        body = "<ul class='status bad'>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"
    # Latency taken on mixed devices or a busy machine is a status problem, not a footnote.
    body += _notes(_device_notes(frame) + _load_notes(frame))
    return f"<section>\n<h2>Status</h2>\n{body}\n</section>"


def _accuracy(frame: pd.DataFrame) -> str:
    t = accuracy_table(frame)
    table = _table(t)
    return _section("Accuracy (Fig. 3)", _how(t), _pair(table, fig.accuracy_svg(frame)))


def _size(frame: pd.DataFrame) -> str:
    t = size_table(frame)
    table = _pair(_table(t), fig.size_svg(frame), wide=True)
    return _section("Model size (Table I)", _how(t), table)


def _training(frame: pd.DataFrame) -> str:
    t = training_table(frame)
    explained = f"<p class='how'>{_md_inline(TRAINING_EXPLAINED)}</p>"
    table = _pair(_table(t), fig.training_svg(frame), wide=True)
    return _section("Training time (Table II)", _how(t), explained, table)


def _calibration(frame: pd.DataFrame) -> str:
    t = calibration_table(frame)
    return _section("Calibration (Table III)", _how(t), _table(t))


def _latency(frame: pd.DataFrame) -> str:
    t = latency_table(frame)
    table = _table(t) if t.rows else "<p>No latency was measured.</p>"
    svgs = [fig.latency_svg(frame, b) for b in fig.latency_batch_sizes(frame)]
    how = _how(t) + (" int8 and fp32 are compared only on the same device with the same threads.")
    caveats = _device_notes(frame) + _load_notes(frame)
    notes = f"<p class='warn'>{len(caveats)} latency caveat(s): see Status.</p>" if caveats else ""
    figs = "<div class='pair'>" + "".join(f"<figure>{s}</figure>" for s in svgs) + "</div>"
    return _section("Latency (Fig. 4)", how, notes, figs, f"<div class='tbl'>{table}</div>")


def _latency_sweep(frame: pd.DataFrame) -> str:
    t = latency_sweep_table(frame)
    table = _table(t) if t.rows else "<p>No latency was measured.</p>"
    notes = _notes(latency_sweep_notes(frame))
    body = f"<div class='tbl'>{table}</div>"
    return _section("Latency by batch size and threads", _how(t), body, notes)


def _memory(frame: pd.DataFrame) -> str:
    t = memory_table(frame)
    return _section("Memory", _how(t), _table(t))


def _breakdown(rows: list[PassBreakdown]) -> str:
    t, tops = breakdown_table(rows), top_ops_table(rows)
    if not t.rows:
        return _section("Where the time goes", _how(t), "<p>No profiler passes were recorded.</p>")
    parts = [
        f"<div class='pair'><figure class='wide'>{fig.breakdown_svg(rows)}</figure></div>",
        f"<div class='tbl'>{_table(t)}</div>",
    ]
    if tops.rows:
        parts += [f"<h3>Top ops</h3><p class='how'>{escape(_how(tops))}</p>", _table(tops)]
    return _section("Where the time goes", _how(t), *parts)


def _traces(entries: list[TraceEntry]) -> str:
    t = traces_table(entries)
    table = _table(t) if t.rows else "<p>No profiler passes were recorded.</p>"
    return _section("Traces", _how(t), f"<div class='tbl'>{table}</div>")


def _provenance(metrics: list[MetricsFile]) -> str:
    parts = []
    for m in metrics:
        items = "".join(
            f"<dt>{escape(k)}</dt><dd>{_md_inline(v)}</dd>" for k, v in provenance_items(m)
        )
        parts.append(f"<h3>{escape(m.framework)}</h3><dl class='prov'>{items}</dl>")
    how = "Where and with what each framework ran; threads are the intra-op thread count."
    return _section("Provenance", how, *parts)


def render_html(
    metrics: list[MetricsFile],
    frame: pd.DataFrame,
    problems: Sequence[str] = (),
    traces: Sequence[TraceEntry] | None = None,
) -> str:
    """The whole report as one self-contained HTML page (no scripts, no external resources)."""
    entries = list(traces) if traces is not None else [e for m in metrics for e in trace_entries(m)]
    body = [
        _title(metrics),
        _warnings(metrics, frame),
        _status(metrics, frame, problems),
        _accuracy(frame),
        _size(frame),
        _training(frame),
        _calibration(frame),
        _latency(frame),
        _latency_sweep(frame),
        _memory(frame),
        _breakdown(pass_breakdowns(metrics)),
        _traces(entries),
        _provenance(metrics),
    ]
    title = "Quantization comparison — " + ", ".join(dict.fromkeys(m.run_id for m in metrics))
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )
