"""Where int8 loses accuracy: per-layer SQNR of every int8 variant of both frameworks
(one figure, one table, own error split into weight and output rounding), the block
outputs side by side across frameworks, the layers floating would fix most, and what
keeping them in float buys back (metrics.json ``variants.<v>.layers``, docs/layers.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.report.analysed import INT8_VARIANTS, Analysed, analyses
from harness.report.frame import ReportData
from harness.report.layers_figure import sqnr_svg
from harness.report.layers_what_if import what_if_table
from harness.report.model import Block, Column, Figure, Note, Paragraph, Row, Section, Table
from harness.report.sections_results import FRAMEWORK, STATUS, VARIANT
from harness_contract.layers.error import LayerAnalysis, LayerError

UNROUNDED = "†"  # marks a point whose output the int8 model leaves in float
RANKED_BY = {
    "sensitivity_sqnr_db": "sensitivity (logits SQNR with the layer alone in float)",
    "weight_sqnr_db": "weight SQNR",
    "own_sqnr_db": "own SQNR",
    "sqnr_db": "propagated SQNR",
}


def _layer_order(found: Sequence[Analysed]) -> list[str]:
    """Network order: each analysis lists its layers in it; the first one that has any."""
    order: list[str] = []
    for a in found:
        for x in a.analysis.layers:
            if x.layer not in order:
                order.append(x.layer)
    return order


# ---------------------------------------------------------------- tables


def _marked(value: float | None, row: LayerError | None) -> Any:
    """The value, with the unrounded mark where the int8 model leaves the output in float."""
    if row is None or row.output_quantized is not False:
        return value
    return f"{'—' if value is None else f'{value:,.1f}'} {UNROUNDED}"


def layer_table(found: Sequence[Analysed], layers: Sequence[str]) -> Table:
    columns = [Column("Layer")]
    for a in found:
        columns += [
            Column(a.label, "dB", "0.1"),
            Column(f"{a.label} own", "dB", "0.1"),
            Column(f"{a.label} weight", "dB", "0.1"),
            Column(f"{a.label} output", "dB", "0.1"),
        ]
        if a.analysis.reference == "qat_float":
            columns.append(Column(f"{a.label} drift", "dB", "0.1"))
    by = [{x.layer: x for x in a.analysis.layers} for a in found]
    rows = []
    for name in layers:
        values: list[Any] = [name]
        for a, table in zip(found, by, strict=True):
            x = table.get(name)
            values += [
                _marked(x.sqnr_db if x else None, x),
                _marked(x.own_sqnr_db if x else None, x),
                x.weight_sqnr_db if x else None,
                _marked(x.output_sqnr_db if x else None, x),
            ]
            if a.analysis.reference == "qat_float":
                values.append(x.drift_sqnr_db if x else None)
        rows.append(Row(values))
    notes = []
    if any(x.output_quantized is False for a in found for x in a.analysis.layers):
        notes.append(
            f"{UNROUNDED} the int8 model leaves this output in float (not rounded): its "
            "propagated and own figures hold no output rounding, unlike a framework that "
            "rounds there; compare frameworks at the block outputs below."
        )
    return Table(
        columns,
        rows,
        "per measuring point (network order: each conv, each residual block's output "
        "`.out` after its add and ReLU, the dense layer), the SQNR of each int8 variant's "
        "dequantized output against its reference on the same test images, in dB: "
        "propagated (the int8 model run end to end up to the point), then *own* (the layer "
        "alone, given the same input), split into *weight* (its int8-rounded weights, float "
        "output: what keeping it in float removes) and *output* (its output rounding "
        "alone); QAT's *drift* is its fine-tuned float model against the fp32 baseline. "
        "Higher is closer; 20 dB is a noise of a tenth of the signal's amplitude",
        title="SQNR per layer",
        notes=notes,
        wide=True,
    )


def block_table(found: Sequence[Analysed]) -> Table | None:
    """The block outputs (after the add and ReLU, where both frameworks round to int8),
    framework beside framework for each variant: the like-for-like comparison."""
    blocks: list[str] = []
    for a in found:
        blocks += [
            x.layer for x in a.analysis.layers if x.kind == "block" and x.layer not in blocks
        ]
    if not blocks:
        return None
    columns, getters = [Column("Block output")], []
    for variant in INT8_VARIANTS:
        of = [a for a in found if a.variant == variant]
        for a in of:
            columns.append(Column(a.label, "dB", "0.1"))
            getters.append(lambda name, a=a: _sqnr(a, name))
        if len(of) == 2:
            first, second = of
            columns.append(
                Column(f"{variant}: {second.framework} − {first.framework}", "dB", "0.1")
            )
            getters.append(lambda name, f=first, s=second: _difference(s, f, name))
    rows = [Row([name, *(get(name) for get in getters)]) for name in blocks]
    return Table(
        columns,
        rows,
        "each residual block's output after its add and ReLU, where both frameworks round "
        "to int8: propagated SQNR against the reference in dB, framework beside framework "
        "for each variant, and their difference (positive: the second is closer)",
        title="Block outputs, side by side",
        wide=True,
    )


def _sqnr(a: Analysed, name: str) -> float | None:
    return next((x.sqnr_db for x in a.analysis.layers if x.layer == name), None)


def _difference(second: Analysed, first: Analysed, name: str) -> float | None:
    x, y = _sqnr(second, name), _sqnr(first, name)
    return None if x is None or y is None else x - y


def reference_notes(found: Sequence[Analysed]) -> list[Note]:
    """Say which QAT analyses are measured against their own fine-tuned float model."""
    own = [a.label for a in found if a.analysis.reference == "qat_float"]
    if not own:
        return []
    return [
        Note(
            f"{', '.join(own)}: measured against its own fine-tuned float model (the QAT "
            "model before conversion), so its figures are quantization error alone; its "
            "drift column is that float model against the fp32 baseline (what fine-tuning "
            "moved, not what int8 lost).",
            tone="remark",
        )
    ]


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


def _worst(x: LayerAnalysis) -> str:
    """The first five of the ranking, each with the figure it was ranked by."""
    by = {row.layer: row for row in x.layers}
    names = []
    for name in x.worst:
        value = getattr(by[name], x.ranked_by) if x.ranked_by and name in by else None
        names.append(f"`{name}`" + ("" if value is None else f" ({value:.1f} dB)"))
    return ", ".join(names)


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
                    _worst(x) or x.reason,
                    RANKED_BY.get(x.ranked_by or ""),
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
        "the five layers of each int8 variant that keeping in float would fix most, most "
        "first, by the figure named (weight SQNR: the layer's weight rounding, what float "
        "removes; sensitivity: the variant made again with that layer alone in float), and "
        "how the figures were obtained; unmapped lists framework names no layer took",
        title="Worst layers",
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
        series = [(a.label, {x.layer: x for x in a.analysis.layers}) for a in ok]
        blocks.append(Figure("layers_sqnr", sqnr_svg(series, order), wide=True))
        blocks.append(layer_table(ok, order))
        blocks += unrounded_outputs(ok)
        blocks += reference_notes(ok)
        side_by_side = block_table(ok)
        if side_by_side is not None:
            blocks.append(side_by_side)
    blocks.append(worst_table(found))
    blocks += [Note(f"{a.label}: {note}", tone="remark") for a in ok for note in a.analysis.notes]
    blocks.append(what_if_table(ok))
    return Section(
        "Per-layer quantization error",
        blocks,
        how_to_read="where int8 loses accuracy, layer by layer, and what float buys back",
    )
