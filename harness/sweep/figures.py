"""Grouped bars with error bars (the interval of each bar), drawn with the report's own
SVG primitives and chart geometry so sweep figures look like a run's figures."""

from __future__ import annotations

import math

from harness.report import charts, svg
from harness.report.charts import (
    HEIGHT,
    MARGIN_BOTTOM,
    MARGIN_LEFT,
    MARGIN_RIGHT,
    MARGIN_TOP,
    WIDTH,
)
from harness.sweep.aggregate import LatencyRow, SummaryRow

Interval = tuple[float, float] | None


def render_error_bars(chart: charts.BarChart, errors: dict[tuple[str, str], Interval]) -> str:
    """``chart`` as bars from zero to each value, with a capped whisker over its interval."""
    tops = [float(v) for v in chart.values.values() if charts.present(v)]
    tops += [hi for iv in errors.values() if iv for hi in (iv[1],) if math.isfinite(hi)]
    top = chart.y_max if chart.y_max is not None else max([0.0, *tops])
    top = top if top > 0 else 1.0
    step = svg.nice_step(top)
    top = math.ceil(top / step - 1e-9) * step
    plot_top, plot_bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM

    def y_of(value: float) -> float:
        clamped = min(max(value, 0.0), top)
        return plot_bottom - (clamped / top) * (plot_bottom - plot_top)

    parts = [svg.background(WIDTH, HEIGHT), *svg.header(WIDTH, chart.title, chart.subtitle)]
    for i in range(round(top / step) + 1):
        y = y_of(i * step)
        parts.append(
            svg.line(MARGIN_LEFT, y, WIDTH - MARGIN_RIGHT, y, svg.AXIS if i == 0 else svg.GRID)
        )
        parts.append(
            svg.text(
                MARGIN_LEFT - 6, y + 4, svg.tick_text(i * step), text_anchor="end", font_size="11"
            )
        )
    mid = (plot_top + plot_bottom) / 2
    parts.append(
        svg.text(
            16,
            mid,
            chart.y_label,
            text_anchor="middle",
            font_size="12",
            transform=f"rotate(-90 16 {svg.r(mid)})",
        )
    )
    group_w = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / max(len(chart.groups), 1)
    bar_w = min(56.0, group_w * 0.8 / max(len(chart.series), 1))
    for g, group in enumerate(chart.groups):
        center = MARGIN_LEFT + group_w * (g + 0.5)
        start = center - bar_w * len(chart.series) / 2
        for s, name in enumerate(chart.series):
            x = start + s * bar_w
            value = chart.values.get((group, name))
            if not charts.present(value):
                parts.append(
                    svg.text(
                        x + bar_w / 2,
                        y_of(0) - 6,
                        charts.NA,
                        text_anchor="middle",
                        font_size="11",
                        fill="#888",
                    )
                )
                continue
            y = y_of(float(value))
            parts.append(svg.rect(x + 1, y, bar_w - 2, y_of(0) - y, chart.color(s)))
            parts += _whisker(x + bar_w / 2, errors.get((group, name)), y_of, bar_w / 4)
            label = chart.value_format(float(value))
            parts.append(
                svg.text(
                    x + bar_w / 2,
                    y_of(0) - 4,
                    label,
                    text_anchor="middle",
                    font_size="10",
                    fill="#fff",
                )
            )
        parts.append(
            svg.text(center, y_of(0) + 18, group, text_anchor="middle", font_size="12", fill="#222")
        )
    entries = [(name, chart.color(s)) for s, name in enumerate(chart.series)]
    parts += svg.legend_row(entries, WIDTH / 2, HEIGHT - 22)
    return svg.document(WIDTH, HEIGHT, parts)


def _whisker(x: float, interval: Interval, y_of, cap: float) -> list[str]:  # noqa: ANN001
    if not interval:
        return []
    low, high = (y_of(v) for v in interval)
    return [
        svg.line(x, low, x, high, svg.AXIS),
        svg.line(x - cap, low, x + cap, low, svg.AXIS),
        svg.line(x - cap, high, x + cap, high, svg.AXIS),
    ]


def accuracy_figure(rows: list[SummaryRow], cell: str, confidence: float) -> str:
    chosen = [r for r in rows if r.cell == cell and r.metric == "top1_pct"]
    groups = list(dict.fromkeys(r.variant for r in chosen))
    series = sorted({r.framework for r in chosen})
    values = {(r.variant, r.framework): r.mean for r in chosen}
    errors = {(r.variant, r.framework): _iv(r.low, r.high) for r in chosen}
    seeds = max((r.n for r in chosen), default=0)
    chart = charts.BarChart(
        title="Top-1 accuracy over seeds",
        subtitle=f"{cell} · mean of {seeds} seeds, whiskers: {confidence:.0%} t interval",
        y_label="top-1 (%)", groups=groups, series=series, values=values,
        value_format=svg.fmt_fixed(1), y_max=100.0,
    )  # fmt: skip
    return render_error_bars(chart, errors)


def latency_figure(
    rows: list[LatencyRow], cell: str, batch: int, threads: int, confidence: float
) -> str:
    chosen = [r for r in rows if r.cell == cell and r.batch_size == batch and r.threads == threads]
    groups = list(dict.fromkeys(r.variant for r in chosen))
    series = sorted({r.framework for r in chosen})
    values = {(r.variant, r.framework): r.p50_ms for r in chosen}
    errors = {(r.variant, r.framework): _iv(r.low_ms, r.high_ms) for r in chosen}
    runs = sorted({r.runs for r in chosen if r.runs > 0})
    counts = f"{runs[0]}–{runs[-1]}" if len(runs) > 1 else f"{runs[0]}" if runs else "0"
    whiskers = (
        f"mean of {counts} runs' p50, whiskers: {confidence:.0%} t interval over the runs' p50"
        if runs and runs[-1] > 1
        else f"one run's p50, whiskers: {confidence:.0%} bootstrap within one run"
    )
    chart = charts.BarChart(
        title=f"Latency p50, batch {batch}, {threads} thread{'s' * (threads != 1)}",
        subtitle=f"{cell} · {whiskers}",
        y_label="p50 (ms)", groups=groups, series=series, values=values,
        value_format=svg.fmt_auto,
    )  # fmt: skip
    return render_error_bars(chart, errors)


def _iv(low: float | None, high: float | None) -> Interval:
    return None if low is None or high is None else (low, high)
