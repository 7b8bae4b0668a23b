"""The runtime ladder: every variant on each deployable runtime of its framework, speed-ups
only within one runtime, one labelled best-vs-best line per framework, and the two edge
runtimes (ExecuTorch and LiteRT, both on XNNPACK) side by side."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.report.frame import ReportData
from harness.report.latency import batch_sizes, end_batch_sizes, per_sample
from harness.report.model import Column, Note, Row, Section, Table, absent, one_line
from harness.report.sections_latency import RUNTIME, runtime_label, runtime_rows, speedup
from harness.report.sections_results import (
    DEVICE,
    FRAMEWORK,
    PRECISION,
    STATUS,
    THREADS,
    VARIANT,
    WILSON,
    interval_text,
    p_value_text,
    repeat_notes,
)
from harness_contract.runtimes import runtime

NOT_DIVIDED = (
    "ExecuTorch and LiteRT both run their programs on XNNPACK kernels: this table sets the "
    "two frameworks' edge deployments side by side. No ratio is taken across frameworks."
)


def _own_threads(r: pd.Series) -> int | None:
    threads = r.get("latency_threads")
    if absent(threads):
        return None
    try:
        return int(threads)
    except ValueError:  # mixed thread counts: no single row to read
        return None


def _p50(data: ReportData, r: pd.Series, batch: int) -> float | None:
    threads = _own_threads(r)
    if threads is None:
        return None
    return per_sample(data.latency, r["framework"], r["variant"], batch, threads, r["runtime"])


def ladder_table(data: ReportData) -> Table:
    ends = end_batch_sizes(data.latency)
    columns = [
        FRAMEWORK,
        VARIANT,
        RUNTIME,
        PRECISION,
        STATUS,
        Column("Top-1", "%", "0.2"),
        WILSON,
        Column("McNemar p vs fp32, exact", align="right"),
        Column("Agreement with fp32", "%", "0.2"),
        Column("Size", "MiB", "0.2"),
        Column("Format"),
        Column("Compile", "s", "0.1"),
        Column("Compile per latency batch", "s"),
    ]
    columns += [Column(f"Batch {b}: p50 per sample", "ms", "0.2") for b in ends]
    columns += [
        Column(f"int8 speed-up vs fp32 on this runtime, batch {b}", "x", "0.2") for b in ends
    ]
    columns += [DEVICE, THREADS]
    rows = []
    ordered = runtime_rows(data)
    for r in ordered:
        threads = _own_threads(r)
        values: list[Any] = [r["framework"], r["variant"], runtime_label(r), r["precision"]]
        values += [r["status"], r["accuracy_pct"], _wilson(r)]
        values += [p_value_text(r.get("accuracy_mcnemar_p")), r["agreement_with_fp32_pct"]]
        values += [r["size_mib"], r["size_format"], r["compile_s"], _per_batch(data, r)]
        values += [_p50(data, r, b) for b in ends]
        values += [speedup(data, r, b, threads) if threads else None for b in ends]
        values += [r["latency_device"], r["latency_threads"]]
        rows.append(Row(values, r["status"]))
    how = (
        "each variant on every runtime its framework deploys to: its own runtime first (where "
        "the other sections' figures come from), then the same model compiled, exported or "
        "re-quantized for the framework's other runtimes, each measured the same way. Top-1 (with "
        "its 95% Wilson interval for that many test images) and agreement with the framework's "
        "reference fp32 (its own runtime) in %, on the test images; McNemar's exact test of the "
        "top-1 change against that reference, from the images only one of the two gets right; size"
        " in MiB of the file that runtime loads; compile = seconds to compile, lower or convert "
        "for it (a deployment cost; for Inductor the static compile for the largest latency batch,"
        " which accuracy ran on); compile per latency batch = the static-shape compile each batch "
        "size's latency was taken on, as a user serving that batch builds it (Inductor; blank "
        "where one program serves every batch at its own speed: an ExecuTorch .pte with a dynamic "
        "batch, a LiteRT interpreter resized per batch); latency per sample at the run's own "
        "threads. Speed-ups divide fp32 by int8 on the same runtime only."
    )
    notes = repeat_notes(ordered)
    return Table(columns, rows, how, title="Every runtime", notes=notes, wide=True)


def _per_batch(data: ReportData, r: pd.Series) -> str | None:
    """The rung's per-batch compile seconds, batch by batch (e.g. "3.1 (b1), 2.9 (b32)")."""
    for m in data.metrics:
        v = m.variant(r["variant"]) if m.framework == r["framework"] else None
        for rung in v.rungs if v is not None else []:
            if rung.runtime == r["runtime"] and rung.compile_s_by_batch:
                by_batch = sorted(rung.compile_s_by_batch.items())
                return ", ".join(f"{s:.1f} (b{b})" for b, s in by_batch)
    return None


def _wilson(r: pd.Series) -> str | None:
    return interval_text(r.get("accuracy_ci_low_pct"), r.get("accuracy_ci_high_pct"))


def _best(data: ReportData, rows: list[pd.Series], batch: int) -> tuple[pd.Series, float] | None:
    timed = [(r, _p50(data, r, batch)) for r in rows if r["status"] == "ok"]
    timed = [(r, t) for r, t in timed if t is not None]
    return min(timed, key=lambda rt: rt[1]) if timed else None


def best_vs_best(data: ReportData) -> list[str]:
    """Per framework: the fastest fp32 runtime over the fastest int8 one at batch 1,
    labelled as a comparison across runtimes (the one ratio that may mix them)."""
    sizes = batch_sizes(data.latency)
    if not sizes:
        return []
    batch = sizes[0]
    rows = runtime_rows(data)
    lines = []
    for fw in dict.fromkeys(r["framework"] for r in rows):
        mine = [r for r in rows if r["framework"] == fw]
        fp32 = _best(data, [r for r in mine if r["precision"] == "fp32"], batch)
        int8 = _best(data, [r for r in mine if r["precision"] == "int8"], batch)
        if fp32 is None or int8 is None:
            continue
        (rf, tf), (ri, ti) = fp32, int8
        where = f"batch {batch}, {rf['latency_threads']} threads, {rf['latency_device']}"
        if (rf["latency_device"], rf["latency_threads"]) != (
            ri["latency_device"],
            ri["latency_threads"],
        ):
            lines.append(
                f"**{fw}, best deployable fp32 vs best int8 (across runtimes):** not compared: "
                f"fp32 on {rf['latency_device']} / {rf['latency_threads']} threads, int8 on "
                f"{ri['latency_device']} / {ri['latency_threads']} threads."
            )
            continue
        if rf["runtime"] == ri["runtime"]:
            kind = f"both on {runtime_label(rf)}, so like for like"
            tail = ""
        else:
            kind = "across runtimes, by design"
            tail = " This ratio includes the change of runtime; the per-runtime speed-ups do not."
        lines.append(
            f"**{fw}, best deployable fp32 vs best int8 ({kind}):** fp32 {runtime_label(rf)} "
            f"{tf:.2f} ms per sample, int8 {runtime_label(ri)} ({ri['variant']}) {ti:.2f} ms, "
            f"{where}: {tf / ti:.2f}x.{tail}"
        )
    return lines


def edge_table(data: ReportData) -> Table | None:
    ends = end_batch_sizes(data.latency)
    rows = [r for r in runtime_rows(data) if runtime(r["framework"], str(r["runtime"])).edge]
    if not rows or len({r["framework"] for r in rows}) < 2:
        return None
    order = {"baseline": 0, "ptq": 1, "qat": 2}
    rows.sort(key=lambda r: (order.get(r["variant"], 9), r["framework"]))
    columns = [VARIANT, PRECISION, FRAMEWORK, RUNTIME, STATUS]
    columns += [Column("Size", "MiB", "0.2"), Column("Top-1", "%", "0.2"), WILSON]
    columns += [Column("Agreement with fp32", "%", "0.2")]
    columns += [Column(f"Batch {b}: p50 per sample", "ms", "0.2") for b in ends]
    columns += [DEVICE, THREADS]
    table_rows = []
    for r in rows:
        values: list[Any] = [r["variant"], r["precision"], r["framework"], runtime_label(r)]
        values += [r["status"], r["size_mib"], r["accuracy_pct"], _wilson(r)]
        values += [r["agreement_with_fp32_pct"]]
        values += [_p50(data, r, b) for b in ends]
        values += [r["latency_device"], r["latency_threads"]]
        table_rows.append(Row(values, r["status"]))
    how = (
        "the edge runtimes of both frameworks, variant by variant: a flatbuffer program "
        "(.pte, .tflite) run by XNNPACK on the CPU, the paper's resource-constrained setting. "
        "Size of that file in MiB; latency per sample in ms at the run's own threads."
    )
    return Table(
        columns, table_rows, how, title="Edge to edge: ExecuTorch and LiteRT", notes=[NOT_DIVIDED]
    )


def rung_notes(data: ReportData) -> list[str]:
    """Every rung that did not run, with why (never silently dropped)."""
    out = []
    for _, r in data.rungs.iterrows():
        if r["status"] == "ok":
            continue
        reason = "no reason recorded" if absent(r["reason"]) else one_line(str(r["reason"]))
        out.append(
            f"**{r['framework']} {r['variant']} on {runtime_label(r)}:** {r['status']} — {reason}"
        )
    return out


def ladder(data: ReportData) -> Section | None:
    if data.rungs.empty:
        return None
    main = ladder_table(data)
    blocks: list = [main]
    blocks += [Note(line, "remark") for line in best_vs_best(data)]
    edge = edge_table(data)
    if edge is not None:
        blocks.append(edge)
    blocks += [Note(line, "remark") for line in rung_notes(data)]
    return Section("Runtime ladder", blocks)
