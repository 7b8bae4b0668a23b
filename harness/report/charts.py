"""Two chart kinds, drawn from svg.py's primitives: grouped vertical bars (accuracy,
size, training time, latency) and 100 % stacked horizontal bars (where the time goes)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.report import svg

NA = "n/a"
WIDTH, HEIGHT = 640, 380
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 66, 78


def present(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------- grouped bars


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
    colors: Sequence[str] = field(default=svg.PALETTE)

    def color(self, s: int) -> str:
        return self.colors[s % len(self.colors)]


def _axis(chart: BarChart) -> tuple[float, float]:
    """(top of the y axis, tick step); the axis always starts at zero (linear, no log)."""
    data = [float(v) for v in chart.values.values() if present(v)]
    top = chart.y_max if chart.y_max is not None else max([0.0, *data])
    if top <= 0:
        top = 1.0  # nothing (or only zeros) to show: still draw a sane empty axis
    step = svg.nice_step(top)
    return math.ceil(top / step - 1e-9) * step, step


def _y_axis(chart: BarChart, top: float, step: float, y_of: Callable[[float], float]) -> list[str]:
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    parts = []
    for i in range(round(top / step) + 1):
        value = i * step
        y = y_of(value)
        parts.append(svg.line(left, y, right, y, svg.AXIS if i == 0 else svg.GRID))
        label = svg.tick_text(value)
        parts.append(
            svg.text(left - 6, y + 4, label, text_anchor="end", font_size="11", fill="#333")
        )
    mid = (MARGIN_TOP + HEIGHT - MARGIN_BOTTOM) / 2
    rotate = f"rotate(-90 16 {svg.r(mid)})"
    parts.append(
        svg.text(16, mid, chart.y_label, text_anchor="middle", font_size="12", transform=rotate)
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
            if not present(value):
                parts.append(
                    svg.text(mid, base_y - 6, NA, text_anchor="middle", font_size="11", fill="#888")
                )
                continue
            y = y_of(float(value))
            parts.append(svg.rect(x + 1, y, bar_w - 2, base_y - y, chart.color(s)))
            label = chart.value_format(float(value))
            parts.append(svg.text(mid, y - 4, label, text_anchor="middle", font_size="11"))
        parts.append(
            svg.text(center, base_y + 18, group, text_anchor="middle", font_size="12", fill="#222")
        )
    return parts


def render_bar_chart(chart: BarChart) -> str:
    """The chart as a complete SVG document (also valid inline in HTML5)."""
    top, step = _axis(chart)
    plot_top, plot_bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM

    def y_of(value: float) -> float:
        return plot_bottom - (value / top) * (plot_bottom - plot_top)

    entries = [(name, chart.color(s)) for s, name in enumerate(chart.series)]
    body = [
        svg.background(WIDTH, HEIGHT),
        *svg.header(WIDTH, chart.title, chart.subtitle),
        *_y_axis(chart, top, step, y_of),
        *_bars(chart, y_of),
        *svg.legend_row(entries, WIDTH / 2, HEIGHT - 22),
    ]
    if not any(present(v) for v in chart.values.values()):
        body.append(
            svg.text(WIDTH / 2, (plot_top + plot_bottom) / 2, "no data", text_anchor="middle")
        )
    return svg.document(WIDTH, HEIGHT, body)


# ---------------------------------------------------------------- stacked shares

SB_WIDTH, SB_LABEL_W, SB_RIGHT, SB_TOP, SB_BAR, SB_GAP = 860, 300, 24, 70, 20, 8
SB_MIN_LABEL_SHARE = 0.06  # segments narrower than this carry no % label


@dataclass(frozen=True)
class StackedBar:
    label: str
    # category -> fraction of the bar, drawn in the chart's category order; None: no data,
    # and ``status`` is written in its place.
    shares: dict[str, float] | None
    status: str = ""


@dataclass(frozen=True)
class StackedBars:
    """Horizontal bars, each 100 % wide, split into categories (one colour each)."""

    title: str
    subtitle: str
    bars: Sequence[StackedBar]
    categories: dict[str, str]  # key -> legend label, in drawing order
    colors: dict[str, str]  # key -> fill
    dark_text: frozenset[str] = frozenset()  # light fills that take black labels


def _segments(chart: StackedBars, bar: StackedBar, y: float, mid: float) -> list[str]:
    plot_w = SB_WIDTH - SB_LABEL_W - SB_RIGHT
    parts, x = [], float(SB_LABEL_W)
    for category in chart.categories:
        share = (bar.shares or {}).get(category, 0.0)
        if share <= 0:
            continue
        w = plot_w * share
        parts.append(svg.rect(x, y, w, SB_BAR, chart.colors.get(category, "#999")))
        if share >= SB_MIN_LABEL_SHARE:
            ink = "#000" if category in chart.dark_text else "#fff"
            pct = f"{share * 100:.0f}"
            parts.append(
                svg.text(x + w / 2, mid, pct, text_anchor="middle", font_size="11", fill=ink)
            )
        x += w
    return parts


def render_stacked_bars(chart: StackedBars) -> str:
    plot_w = SB_WIDTH - SB_LABEL_W - SB_RIGHT
    axis_y = SB_TOP + len(chart.bars) * (SB_BAR + SB_GAP) + 4
    entries = [(label, chart.colors.get(c, "#999")) for c, label in chart.categories.items()]
    legend, legend_bottom = svg.legend_wrapped(
        entries, SB_LABEL_W, SB_WIDTH - SB_RIGHT, axis_y + 44
    )
    height = round(legend_bottom + 16)
    parts = [svg.background(SB_WIDTH, height), *svg.header(SB_WIDTH, chart.title, chart.subtitle)]
    for pct in (0, 25, 50, 75, 100):
        x = SB_LABEL_W + plot_w * pct / 100
        parts.append(svg.line(x, SB_TOP - 4, x, axis_y, svg.AXIS if pct == 0 else svg.GRID))
        parts.append(svg.text(x, axis_y + 16, f"{pct}%", text_anchor="middle", font_size="11"))
    for i, bar in enumerate(chart.bars):
        y = SB_TOP + i * (SB_BAR + SB_GAP)
        mid = y + SB_BAR / 2 + 4
        parts.append(svg.text(SB_LABEL_W - 8, mid, bar.label, text_anchor="end", font_size="12"))
        if bar.shares is None:
            parts.append(svg.text(SB_LABEL_W + 6, mid, bar.status, font_size="11", fill="#888"))
            continue
        parts += _segments(chart, bar, y, mid)
    return svg.document(SB_WIDTH, height, [*parts, *legend])
