"""The paper's figures as standalone SVG strings, drawn by hand.

No plotting library: the report host must stay light (pandas and the contract only).
Output is deterministic (fixed formatting, rounded coordinates, no ids from randomness),
so two reports of the same run are byte-identical and diff cleanly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from harness_contract.atomic import write_text_atomic
from harness_contract.breakdown import CATEGORIES
from harness_contract.metrics import VARIANTS

from .profiles import PassBreakdown

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
VARIANT_LABELS = {"baseline": "Baseline (fp32)", "ptq": "PTQ (int8)", "qat": "QAT (int8)"}
NA = "n/a"

WIDTH, HEIGHT = 640, 380
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 66, 78


# ---------------------------------------------------------------- the chart model


@dataclass(frozen=True)
class BarChart:
    """A grouped bar chart: one group per x label, one bar per series inside each group."""

    title: str
    y_label: str
    groups: Sequence[str]
    series: Sequence[str]
    # (group, series) -> value; None or NaN means "not measured" and draws an "n/a" label.
    values: dict[tuple[str, str], float | None]
    value_format: Callable[[float], str]
    subtitle: str = ""
    y_max: float | None = None  # fixed top (e.g. 100 for %), else derived from the data
    colors: Sequence[str] = field(default=PALETTE)


def _present(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _r(x: float) -> str:
    """Coordinates rounded to 0.1 px: enough precision, and stable text across platforms."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _nice_step(span: float, target_ticks: int = 5) -> float:
    """A 1/2/2.5/5 x 10^k tick step giving about ``target_ticks`` intervals."""
    raw = span / target_ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _axis(chart: BarChart) -> tuple[float, float]:
    """(top of the y axis, tick step); the axis always starts at zero (linear, no log)."""
    data = [float(v) for v in chart.values.values() if _present(v)]
    top = chart.y_max if chart.y_max is not None else max([0.0, *data])
    if top <= 0:
        top = 1.0  # nothing (or only zeros) to show: still draw a sane empty axis
    step = _nice_step(top)
    return math.ceil(top / step - 1e-9) * step, step


def _tick_text(value: float) -> str:
    return f"{round(value, 10):g}"


def fmt_auto(value: float) -> str:
    """About three significant digits: latencies span 0.1 ms to hundreds of ms."""
    magnitude = abs(value)
    decimals = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 1 else 3
    return f"{value:,.{decimals}f}"


def fmt_fixed(decimals: int) -> Callable[[float], str]:
    return lambda value: f"{value:,.{decimals}f}"


# ---------------------------------------------------------------- SVG pieces


def _text(x: float, y: float, content: str, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return f'<text x="{_r(x)}" y="{_r(y)}"{extra}>{escape(content)}</text>'


def _header(chart: BarChart) -> list[str]:
    parts = [
        f"<title>{escape(chart.title)}</title>",
        _text(WIDTH / 2, 24, chart.title, text_anchor="middle", font_size="15", font_weight="600"),
    ]
    if chart.subtitle:
        parts.append(
            _text(WIDTH / 2, 43, chart.subtitle, text_anchor="middle", font_size="11", fill="#555")
        )
    return parts


def _y_axis(chart: BarChart, top: float, step: float, y_of: Callable[[float], float]) -> list[str]:
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    parts = []
    ticks = round(top / step)
    for i in range(ticks + 1):
        value = i * step
        y = y_of(value)
        grid = "#333" if i == 0 else "#e3e3e3"
        parts.append(f'<line x1="{left}" y1="{_r(y)}" x2="{right}" y2="{_r(y)}" stroke="{grid}"/>')
        parts.append(
            _text(
                left - 6, y + 4, _tick_text(value), text_anchor="end", font_size="11", fill="#333"
            )
        )
    mid = (MARGIN_TOP + HEIGHT - MARGIN_BOTTOM) / 2
    parts.append(
        _text(
            16,
            mid,
            chart.y_label,
            text_anchor="middle",
            font_size="12",
            transform=f"rotate(-90 16 {_r(mid)})",
        )
    )
    return parts


def _bars(chart: BarChart, y_of: Callable[[float], float]) -> list[str]:
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    group_w = plot_w / max(len(chart.groups), 1)
    bar_w = min(56.0, group_w * 0.8 / max(len(chart.series), 1))
    base_y = y_of(0)
    parts = []
    for g, group in enumerate(chart.groups):
        center = MARGIN_LEFT + group_w * (g + 0.5)
        start = center - bar_w * len(chart.series) / 2
        for s, name in enumerate(chart.series):
            x = start + s * bar_w
            mid = x + bar_w / 2
            value = chart.values.get((group, name))
            if not _present(value):
                parts.append(
                    _text(mid, base_y - 6, NA, text_anchor="middle", font_size="11", fill="#888")
                )
                continue
            y = y_of(float(value))
            color = chart.colors[s % len(chart.colors)]
            parts.append(
                f'<rect x="{_r(x + 1)}" y="{_r(y)}" width="{_r(bar_w - 2)}" '
                f'height="{_r(base_y - y)}" fill="{color}"/>'
            )
            label = chart.value_format(float(value))
            parts.append(_text(mid, y - 4, label, text_anchor="middle", font_size="11"))
        parts.append(
            _text(center, base_y + 18, group, text_anchor="middle", font_size="12", fill="#222")
        )
    return parts


def _legend(chart: BarChart) -> list[str]:
    # Width per entry from the label length: no font metrics without a browser, so estimate.
    widths = [22 + 7 * len(name) for name in chart.series]
    x = (WIDTH - sum(widths)) / 2
    y = HEIGHT - 22
    parts = []
    for s, (name, w) in enumerate(zip(chart.series, widths, strict=True)):
        color = chart.colors[s % len(chart.colors)]
        parts.append(f'<rect x="{_r(x)}" y="{_r(y - 10)}" width="12" height="12" fill="{color}"/>')
        parts.append(_text(x + 17, y, name, font_size="12"))
        x += w
    return parts


def render_bar_chart(chart: BarChart) -> str:
    """The chart as a complete SVG document (also valid inline in HTML5)."""
    top, step = _axis(chart)
    plot_top, plot_bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM

    def y_of(value: float) -> float:
        return plot_bottom - (value / top) * (plot_bottom - plot_top)

    body = [
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
        *_header(chart),
        *_y_axis(chart, top, step, y_of),
        *_bars(chart, y_of),
        *_legend(chart),
    ]
    if not any(_present(v) for v in chart.values.values()):
        body.append(_text(WIDTH / 2, (plot_top + plot_bottom) / 2, "no data", text_anchor="middle"))
    return (
        f'<svg xmlns="{SVG_NS}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family="{escape(FONT)}">\n'
        + "\n".join(body)
        + "\n</svg>\n"
    )


# ---------------------------------------------------------------- frame -> charts


def _frameworks(frame: pd.DataFrame) -> list[str]:
    return [str(f) for f in dict.fromkeys(frame["framework"])]


def _variants(frame: pd.DataFrame) -> list[str]:
    """Variants present in the frame, in the contract's order (baseline, ptq, qat)."""
    present = set(frame["variant"])
    return [v for v in VARIANTS if v in present]


def _cell(frame: pd.DataFrame, framework: str, variant: str, column: str) -> float | None:
    if column not in frame.columns:
        return None
    match = frame[(frame["framework"] == framework) & (frame["variant"] == variant)]
    if match.empty:
        return None
    value = match.iloc[0][column]
    return float(value) if _present(value) else None


def _variant_values(frame: pd.DataFrame, column: str) -> dict[tuple[str, str], float | None]:
    return {
        (fw, VARIANT_LABELS.get(v, v)): _cell(frame, fw, v, column)
        for fw in _frameworks(frame)
        for v in _variants(frame)
    }


def _variant_series(frame: pd.DataFrame) -> list[str]:
    return [VARIANT_LABELS.get(v, v) for v in _variants(frame)]


def accuracy_svg(frame: pd.DataFrame) -> str:
    """Fig. 3: top-1 accuracy per framework x variant, on a fixed 0-100 % axis."""
    return render_bar_chart(
        BarChart(
            title="Top-1 accuracy by framework and variant (Fig. 3)",
            subtitle="test images; higher is better",
            y_label="Top-1 accuracy (%)",
            groups=_frameworks(frame),
            series=_variant_series(frame),
            values=_variant_values(frame, "accuracy_pct"),
            value_format=fmt_fixed(1),
            y_max=100.0,
        )
    )


_MAIN_LATENCY = re.compile(r"^latency_b(\d+)_per_sample_p50_ms$")


def latency_batch_sizes(frame: pd.DataFrame) -> list[int]:
    """Batch 1 and the largest measured batch (just one when they coincide), at the run's
    own thread count: the 1-thread sweep columns are not figures."""
    sizes = sorted(int(m[1]) for c in frame.columns if (m := _MAIN_LATENCY.match(c)))
    return sorted({sizes[0], sizes[-1]}) if sizes else []


def _joined(frame: pd.DataFrame, column: str) -> str:
    values = [str(v) for v in dict.fromkeys(frame[column]) if _present_text(v)]
    return ", ".join(values) if values else NA


def _present_text(value: Any) -> bool:
    return value is not None and value is not pd.NA and str(value) not in ("", "nan")


def latency_svg(frame: pd.DataFrame, batch_size: int) -> str:
    """Fig. 4: per-sample p50 latency at one batch size, with device and threads in the title."""
    column = f"latency_b{batch_size}_per_sample_p50_ms"
    device = _joined(frame, "latency_device") if "latency_device" in frame else NA
    threads = _joined(frame, "latency_threads") if "latency_threads" in frame else NA
    return render_bar_chart(
        BarChart(
            title=f"Per-sample p50 latency, batch {batch_size} — device {device} (Fig. 4)",
            subtitle=f"threads: {threads}; p50 per call / batch size; lower is better",
            y_label="Latency per sample (ms)",
            groups=_frameworks(frame),
            series=_variant_series(frame),
            values=_variant_values(frame, column),
            value_format=fmt_auto,
        )
    )


def size_svg(frame: pd.DataFrame) -> str:
    """Table I as a chart: serialized model size per framework x variant, in MiB."""
    return render_bar_chart(
        BarChart(
            title="Serialized model size (Table I)",
            subtitle="MiB = bytes / 2^20; formats differ between frameworks",
            y_label="Model size (MiB)",
            groups=_frameworks(frame),
            series=_variant_series(frame),
            values=_variant_values(frame, "size_mib"),
            value_format=fmt_fixed(2),
        )
    )


def _seconds_per_epoch(frame: pd.DataFrame, framework: str, variant: str) -> float | None:
    wall = _cell(frame, framework, variant, "train_s")
    epochs = _cell(frame, framework, variant, "train_epochs")
    return wall / epochs if wall is not None and epochs else None


def training_svg(frame: pd.DataFrame) -> str:
    """Table II as a chart: baseline training vs QAT fine-tuning, seconds per epoch."""
    series = {"baseline": "Baseline training", "qat": "QAT fine-tuning"}
    values = {
        (fw, label): _seconds_per_epoch(frame, fw, variant)
        for fw in _frameworks(frame)
        for variant, label in series.items()
    }
    return render_bar_chart(
        BarChart(
            title="Training time per epoch (Table II)",
            subtitle="wall-clock seconds per epoch; QAT runs fewer epochs than the baseline",
            y_label="Training time (s/epoch)",
            groups=_frameworks(frame),
            series=list(series.values()),
            values=values,
            value_format=fmt_fixed(1),
            colors=(PALETTE[0], PALETTE[2]),  # baseline and QAT keep their colours from Fig. 3
        )
    )


# ---------------------------------------------------------------- where the time goes

# One colour per category, CATEGORIES order: Okabe-Ito first, greys for the catch-alls.
CATEGORY_COLORS = {
    "convolution": "#0072B2",
    "matmul": "#56B4E9",
    "quantize": "#D55E00",
    "elementwise": "#E69F00",
    "normalization": "#CC79A7",
    "pooling": "#009E73",
    "data": "#F0E442",
    "memory": "#8C8C8C",
    "other": "#C8C8C8",
}
_DARK_TEXT = {"matmul", "elementwise", "data", "other"}  # light fills take black labels
BD_WIDTH, BD_LABEL_W, BD_RIGHT, BD_TOP, BD_BAR, BD_GAP = 860, 300, 24, 70, 20, 8
BD_MIN_LABEL_SHARE = 0.06  # segments narrower than this carry no % label


def _breakdown_legend(y: float) -> tuple[list[str], float]:
    """Category swatches wrapped over as many lines as they need; returns the bottom y."""
    parts, x = [], float(BD_LABEL_W)
    for category, label in CATEGORIES.items():
        w = 22 + 7 * len(label)
        if x + w > BD_WIDTH - BD_RIGHT:
            x, y = float(BD_LABEL_W), y + 20
        color = CATEGORY_COLORS.get(category, "#999")
        parts.append(f'<rect x="{_r(x)}" y="{_r(y - 10)}" width="12" height="12" fill="{color}"/>')
        parts.append(_text(x + 17, y, label, font_size="12"))
        x += w
    return parts, y


def breakdown_svg(rows: Sequence[PassBreakdown]) -> str:
    """Where the time goes: one stacked horizontal bar per pass and device, segments in
    CATEGORIES order, each the category's share of that device's profiled op self time."""
    plot_w = BD_WIDTH - BD_LABEL_W - BD_RIGHT
    body_h = len(rows) * (BD_BAR + BD_GAP)
    axis_y = BD_TOP + body_h + 4
    legend, legend_bottom = _breakdown_legend(axis_y + 44)
    height = round(legend_bottom + 16)
    title = "Where the time goes: share of profiled op self time"
    parts = [
        f'<rect width="{BD_WIDTH}" height="{height}" fill="#fff"/>',
        f"<title>{escape(title)}</title>",
        _text(BD_WIDTH / 2, 24, title, text_anchor="middle", font_size="15", font_weight="600"),
        _text(
            BD_WIDTH / 2,
            43,
            "per pass and device, self time over the profiled steps with the profiler on; "
            "not comparable to latency",
            text_anchor="middle",
            font_size="11",
            fill="#555",
        ),
    ]
    for pct in (0, 25, 50, 75, 100):
        x = BD_LABEL_W + plot_w * pct / 100
        grid = "#333" if pct == 0 else "#e3e3e3"
        parts.append(
            f'<line x1="{_r(x)}" y1="{BD_TOP - 4}" x2="{_r(x)}" y2="{_r(axis_y)}" stroke="{grid}"/>'
        )
        parts.append(_text(x, axis_y + 16, f"{pct}%", text_anchor="middle", font_size="11"))
    for i, row in enumerate(rows):
        y = BD_TOP + i * (BD_BAR + BD_GAP)
        mid = y + BD_BAR / 2 + 4
        parts.append(_text(BD_LABEL_W - 8, mid, row.label, text_anchor="end", font_size="12"))
        if row.status != "ok":
            parts.append(_text(BD_LABEL_W + 6, mid, row.status, font_size="11", fill="#888"))
            continue
        x = float(BD_LABEL_W)
        for category in CATEGORIES:
            share = row.shares.get(category, 0.0)
            if share <= 0:
                continue
            w = plot_w * share
            color = CATEGORY_COLORS.get(category, "#999")
            parts.append(
                f'<rect x="{_r(x)}" y="{_r(y)}" width="{_r(w)}" height="{BD_BAR}" fill="{color}"/>'
            )
            if share >= BD_MIN_LABEL_SHARE:
                ink = "#000" if category in _DARK_TEXT else "#fff"
                parts.append(
                    _text(
                        x + w / 2,
                        mid,
                        f"{share * 100:.0f}",
                        text_anchor="middle",
                        font_size="11",
                        fill=ink,
                    )
                )
            x += w
    parts += legend
    return (
        f'<svg xmlns="{SVG_NS}" width="{BD_WIDTH}" height="{height}" '
        f'viewBox="0 0 {BD_WIDTH} {height}" role="img" font-family="{escape(FONT)}">\n'
        + "\n".join(parts)
        + "\n</svg>\n"
    )


def figures(frame: pd.DataFrame, breakdown: Sequence[PassBreakdown] = ()) -> dict[str, str]:
    """Every figure by file stem, in report order (the breakdown only when passes exist)."""
    result = {
        "accuracy": accuracy_svg(frame),
        "size": size_svg(frame),
        "training": training_svg(frame),
    }
    for batch_size in latency_batch_sizes(frame):
        result[f"latency_b{batch_size}"] = latency_svg(frame, batch_size)
    if breakdown:
        result["breakdown"] = breakdown_svg(breakdown)
    return result


def write_figures(
    frame: pd.DataFrame, directory: Path, breakdown: Sequence[PassBreakdown] = ()
) -> list[Path]:
    """Write ``<directory>/figures/<name>.svg`` atomically; returns the paths written."""
    out = Path(directory) / "figures"
    paths = []
    for name, svg in figures(frame, breakdown).items():
        path = out / f"{name}.svg"
        write_text_atomic(path, svg)
        paths.append(path)
    return paths
