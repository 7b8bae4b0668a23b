"""The per-layer section's what-if table: each int8 variant (k = 0) beside the same
variant made again with the first k layers of its ranking in float."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.report.analysed import Analysed
from harness.report.model import Column, Row, Table
from harness.report.sections_results import FRAMEWORK, THREADS, VARIANT

MIB = 2**20


def _pct(x: float | None) -> float | None:
    return None if x is None else 100 * x


def _variant_row(a: Analysed) -> list[Any]:
    """k = 0: the int8 variant, from the what-if window when it was measured again there
    (timed between the k rows), else from its own phase."""
    k0 = next((w for w in a.analysis.what_if if w.k == 0), None)
    if k0 is not None:
        return [
            a.framework,
            a.variant,
            0,
            "none (the int8 variant, timed again here)",
            _pct(k0.top1),
            _pct(k0.agreement_with_fp32),
            0.0 if k0.agreement_with_fp32 is not None else None,
            None if k0.size_bytes is None else k0.size_bytes / MIB,
            k0.latency_b1_p50_ms,
            k0.threads,
            None,
        ]
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
        for w in (w for w in a.analysis.what_if if w.k > 0):
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
        "each int8 variant (k = 0) and the same variant converted again with the first k "
        "layers of its ranking left in float: top-1 on the test split and agreement with "
        "the fp32 model in %, the agreement that buys back in percentage points, the "
        "model's size and its batch-1 latency (median; k = 0 is timed between the k rows, "
        "the median of its runs)",
        title="What keeping layers in float buys back",
        empty="No what-if was run (analysis.keep_float is empty, or no analysis succeeded).",
        wide=True,
    )
