"""Where int8 loses accuracy: per-layer SQNR of every int8 variant of both frameworks
(one figure, one table), the five worst layers of each, and what keeping the worst
layers in float buys back (metrics.json ``variants.<v>.layers``, docs/layers.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness_contract.layer_error import LayerAnalysis

from . import svg
from .frame import ReportData
from .model import Block, Column, Figure, Note, Paragraph, Row, Section, Table
from .sections_results import FRAMEWORK, STATUS, THREADS, VARIANT

INT8_VARIANTS = ("ptq", "qat")
MIB = 2**20


@dataclass(frozen=True)
class Analysed:
    framework: str
    variant: str
    analysis: LayerAnalysis
    variant_metrics: Any  # the VariantMetrics it belongs to (accuracy, size, latency)

    @property
    def label(self) -> str:
        return f"{self.framework} {self.variant}"


def analyses(data: ReportData) -> list[Analysed]:
    """Every int8 variant that carries a layer analysis, framework by framework."""
    out = []
    for m in data.metrics:
        for name in INT8_VARIANTS:
            v = m.variants.get(name)
            analysis = getattr(v, "layers", None) if v is not None else None
            if analysis is not None:
                out.append(Analysed(m.framework, name, analysis, v))
    return out


def _sqnr_of(a: Analysed) -> dict[str, float | None]:
    return {x.layer: x.sqnr_db for x in a.analysis.layers}


def _layer_order(found: Sequence[Analysed]) -> list[str]:
    """Network order: each analysis lists its layers in it; the first one that has any."""
    order: list[str] = []
    for a in found:
        for x in a.analysis.layers:
            if x.layer not in order:
                order.append(x.layer)
    return order


# ---------------------------------------------------------------- figure


def sqnr_svg(found: Sequence[Analysed], layers: Sequence[str]) -> str:
    """SQNR per layer in network order, one line per framework x variant."""
    width, height = 820, 420
    left, right, top, bottom = 60, 20, 80, 130
    series = [(a.label, _sqnr_of(a)) for a in found]
    values = [v for _, s in series for v in s.values() if v is not None]
    low = min([0.0, *values])
    high = max([10.0, *values])
    step = svg.nice_step(high - low)
    low, high = step * (low // step), step * -(-high // step)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(i: int) -> float:
        return left + (plot_w * (i + 0.5) / max(1, len(layers)))

    def y_of(v: float) -> float:
        return top + plot_h * (high - v) / (high - low)

    parts = [svg.background(width, height)]
    parts += svg.header(
        width,
        "Per-layer SQNR of the int8 models against fp32",
        "dB, propagated (int8 run end to end); higher is closer to fp32; same test images",
    )
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
    for (_, sqnr), (_, color) in zip(series, colors, strict=True):
        parts += _polyline(
            [(x_of(i), sqnr.get(name)) for i, name in enumerate(layers)], y_of, color
        )
    return svg.document(width, height, parts)


def _polyline(points: list[tuple[float, float | None]], y_of: Any, color: str) -> list[str]:
    """One series: line segments between defined points (a gap where a layer has none)."""
    parts, run = [], []
    for x, v in [*points, (0.0, None)]:
        if v is None:
            if len(run) > 1:
                coords = " ".join(f"{svg.r(px)},{svg.r(py)}" for px, py in run)
                parts.append(
                    f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>'
                )
            run = []
            continue
        run.append((x, y_of(v)))
        parts.append(f'<circle cx="{svg.r(x)}" cy="{svg.r(y_of(v))}" r="3" fill="{color}"/>')
    return parts


# ---------------------------------------------------------------- tables


def layer_table(found: Sequence[Analysed], layers: Sequence[str]) -> Table:
    columns = [Column("Layer")]
    for a in found:
        columns += [Column(a.label, "dB", "0.1"), Column(f"{a.label} own", "dB", "0.1")]
    by = [{x.layer: x for x in a.analysis.layers} for a in found]
    rows = []
    for name in layers:
        values: list[Any] = [name]
        for table in by:
            x = table.get(name)
            values += [x.sqnr_db if x else None, x.own_sqnr_db if x else None]
        rows.append(Row(values))
    return Table(
        columns,
        rows,
        "per canonical layer (network order), the SQNR of each int8 variant's dequantized "
        "output against fp32 on the same test images, in dB: propagated (the int8 model run "
        "end to end up to the layer), then *own* (the layer alone, given the same input). "
        "Higher is closer to fp32; 20 dB is a noise of a tenth of the signal's amplitude",
        title="SQNR per layer",
        wide=True,
    )


def unrounded_outputs(found: Sequence[Analysed]) -> list[Note]:
    """Say where an own SQNR is weight rounding alone: a layer whose output the int8 model
    leaves in float (PT2E fuses conv2 into the residual add) is not comparable, own
    column to own column, with a framework that rounds that output to int8."""
    lines = []
    for a in found:
        floats = [x.layer for x in a.analysis.layers if x.output_quantized is False]
        if floats:
            lines.append(f"{a.label}: {', '.join(f'`{n}`' for n in floats)}")
    if not lines:
        return []
    return [
        Note(
            "Own SQNR is weight rounding alone where the int8 model leaves the layer's "
            "output in float (fused into the next op), and weight plus output rounding "
            "elsewhere; compare own columns across frameworks only where both round. Left "
            "in float: " + "; ".join(lines) + "."
        )
    ]


def worst_table(found: Sequence[Analysed]) -> Table:
    columns = [
        FRAMEWORK,
        VARIANT,
        STATUS,
        Column("Worst layers"),
        Column("Ranked by"),
        Column("Images", "count", "count"),
        Column("Method"),
        Column("Unmapped"),
        Column("Analysis", "s", "0.1"),
    ]
    rows = []
    for a in found:
        x = a.analysis
        method = x.method or ""
        if x.own_method:
            method += f"; own error: {x.own_method}"
        rows.append(
            Row(
                [
                    a.framework,
                    a.variant,
                    x.status,
                    ", ".join(f"`{n}`" for n in x.worst) or x.reason,
                    {"own_sqnr_db": "own SQNR", "sqnr_db": "propagated SQNR"}.get(
                        x.ranked_by or ""
                    ),
                    x.images,
                    method or None,
                    ", ".join(x.unmapped) if x.unmapped else "none",
                    x.seconds,
                ],
                x.status,
            )
        )
    return Table(
        columns,
        rows,
        "the five layers with the lowest SQNR of each int8 variant, worst first, and how "
        "the figures were obtained; unmapped lists framework names no canonical layer took",
        title="Worst layers",
        wide=True,
    )


def _pct(x: float | None) -> float | None:
    return None if x is None else 100 * x


def _variant_row(a: Analysed) -> list[Any]:
    v = a.variant_metrics
    acc = getattr(v, "accuracy", None)
    size = getattr(v, "size", None)
    lat = v.latency_at(1) if hasattr(v, "latency_at") else None
    return [
        a.framework,
        a.variant,
        0,
        "none (the int8 variant)",
        _pct(acc.top1 if acc else None),
        _pct(acc.agreement_with_fp32 if acc else None),
        0.0 if acc and acc.agreement_with_fp32 is not None else None,
        size.bytes / MIB if size else None,
        lat.p50_ms if lat else None,
        lat.threads if lat else None,
        None,
    ]


def what_if_table(found: Sequence[Analysed]) -> Table:
    columns = [
        FRAMEWORK,
        VARIANT,
        Column("k", "count", "count"),
        Column("Layers in float"),
        Column("Top-1", "%", "0.2"),
        Column("Agreement with fp32", "%", "0.2"),
        Column("Agreement bought back", "pp", "0.2"),
        Column("Size", "MiB", "0.2"),
        Column("Latency b1 p50", "ms", "0.3"),
        THREADS,
        Column("Converting again", "s", "0.1"),
    ]
    rows = []
    for a in found:
        if not a.analysis.what_if:
            continue
        base = _variant_row(a)
        rows.append(Row(base, "ok"))
        base_agreement = base[5]
        for w in a.analysis.what_if:
            agreement = _pct(w.agreement_with_fp32)
            gain = (
                agreement - base_agreement
                if agreement is not None and base_agreement is not None
                else None
            )
            layers = ", ".join(f"`{n}`" for n in w.float_layers)
            if w.status != "ok":
                layers += f" ({w.status}: {w.reason})"
            rows.append(
                Row(
                    [
                        a.framework,
                        a.variant,
                        w.k,
                        layers,
                        _pct(w.top1),
                        agreement,
                        gain,
                        None if w.size_bytes is None else w.size_bytes / MIB,
                        w.latency_b1_p50_ms,
                        w.threads,
                        w.seconds,
                    ],
                    w.status,
                )
            )
    return Table(
        columns,
        rows,
        "each int8 variant (k = 0) and the same variant converted again with its k worst "
        "layers left in float: top-1 on the test split and agreement with the fp32 model in "
        "%, the agreement that buys back in percentage points, the model's size and its "
        "batch-1 latency (median)",
        title="What keeping the worst layers in float buys back",
        empty="No what-if was run (analysis.keep_float is empty, or no analysis succeeded).",
        wide=True,
    )


def layers(data: ReportData) -> Section | None:
    """The section, or None when no variant carries a layer analysis."""
    found = analyses(data)
    if not found:
        return None
    ok = [a for a in found if a.analysis.status == "ok"]
    blocks: list[Block] = [
        Paragraph(
            [
                "Each int8 variant's conv and dense layers against the fp32 model, on the "
                "same first test images in both frameworks, with one formula: SQNR = 10 "
                "log10(signal energy / noise energy) (docs/layers.md).",
            ]
        )
    ]
    for a in found:
        if a.analysis.status != "ok":
            blocks.append(Note(f"{a.label}: analysis {a.analysis.status}: {a.analysis.reason}"))
    if ok:
        order = _layer_order(ok)
        blocks.append(Figure("layers_sqnr", sqnr_svg(ok, order), wide=True))
        blocks.append(layer_table(ok, order))
        blocks += unrounded_outputs(ok)
    blocks.append(worst_table(found))
    blocks.append(what_if_table(ok))
    return Section(
        "Per-layer quantization error",
        blocks,
        how_to_read="where int8 loses accuracy, layer by layer, and what float buys back",
    )
