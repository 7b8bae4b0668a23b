"""The per-layer SQNR figure: one line per framework x int8 variant over the measuring
points in network order; a point whose output the int8 model leaves in float is drawn
hollow (it is not comparable with a framework that rounds it there)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.report import svg
from harness_contract.layers.error import LayerError

Series = tuple[str, dict[str, LayerError]]  # label, measuring point -> its row


def sqnr_svg(series: Sequence[Series], layers: Sequence[str]) -> str:
    """Propagated SQNR per measuring point, one line per framework x variant."""
    width, height = 820, 420
    left, right, top, bottom = 60, 20, 80, 130
    values = [x.sqnr_db for _, rows in series for x in rows.values() if x.sqnr_db is not None]
    low = min([0.0, *values])
    high = max([10.0, *values])
    step = svg.nice_step(high - low)
    low, high = step * (low // step), step * -(-high // step)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(i: int) -> float:
        return left + (plot_w * (i + 0.5) / max(1, len(layers)))

    def y_of(v: float) -> float:
        return top + plot_h * (high - v) / (high - low)

    hollow = any(x.output_quantized is False for _, rows in series for x in rows.values())
    subtitle = "dB, propagated (int8 run end to end); higher is closer to fp32; same test images"
    if hollow:
        subtitle += "; hollow: output left in float (not rounded)"
    parts = [svg.background(width, height)]
    parts += svg.header(width, "Per-layer SQNR of the int8 models against fp32", subtitle)
    colors = [(label, svg.PALETTE[i % len(svg.PALETTE)]) for i, (label, _) in enumerate(series)]
    parts += svg.legend_row(colors, width / 2, 64)
    tick = low
    while tick <= high + 1e-9:
        y = y_of(tick)
        parts.append(svg.line(left, y, width - right, y, svg.GRID))
        parts.append(
            svg.text(left - 6, y + 4, svg.tick_text(tick), text_anchor="end", font_size="11")
        )
        tick += step
    parts.append(svg.line(left, top, left, top + plot_h, svg.AXIS))
    parts.append(svg.line(left, top + plot_h, width - right, top + plot_h, svg.AXIS))
    for i, name in enumerate(layers):
        x, y = x_of(i), top + plot_h + 10
        parts.append(
            svg.text(
                x,
                y,
                name,
                text_anchor="end",
                font_size="10",
                transform=f"rotate(-50 {svg.r(x)} {svg.r(y)})",
            )
        )
    for (_, rows), (_, color) in zip(series, colors, strict=True):
        points = [(x_of(i), rows.get(name)) for i, name in enumerate(layers)]
        parts += _polyline(points, y_of, color)
    return svg.document(width, height, parts)


def _polyline(points: list[tuple[float, LayerError | None]], y_of: Any, color: str) -> list[str]:
    """One series: line segments between defined points (a gap where a layer has none)."""
    parts, run = [], []
    for x, row in [*points, (0.0, None)]:
        v = row.sqnr_db if row is not None else None
        if v is None:
            if len(run) > 1:
                coords = " ".join(f"{svg.r(px)},{svg.r(py)}" for px, py in run)
                parts.append(
                    f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>'
                )
            run = []
            continue
        run.append((x, y_of(v)))
        cx, cy = svg.r(x), svg.r(y_of(v))
        if row is not None and row.output_quantized is False:
            parts.append(
                f'<circle cx="{cx}" cy="{cy}" r="3.5" fill="white" stroke="{color}" '
                'stroke-width="1.5"/>'
            )
        else:
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
    return parts
