"""Latency (Fig. 4) at the run's own threads, and per-sample latency by batch size and threads,
both read from the long latency table."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .frame import ReportData
from .latency import batch_sizes, own_rows, per_sample, sweep_threads
from .model import MISSING, Column, Figure, Note, Row, Section, Table, absent, one_line
from .sections_results import DEVICE, FRAMEWORK, PRECISION, THREADS, VARIANT, frame_row, get
from .sections_results import variant_rows as frame_rows

SAME_DEVICE = (
    "int8 and fp32 rows are compared only on the same device with the same threads; "
    "rows from different devices are not a speed-up."
)
NO_LATENCY = "No latency was measured."


def device_notes(frame: pd.DataFrame) -> list[str]:
    """Fairness rule 5: fp32 and int8 latencies from different devices are called out."""
    notes = []
    for fw in dict.fromkeys(frame["framework"]):
        base = frame_row(frame, fw, "baseline")
        fp32_device, fp32_threads = get(base, "latency_device"), get(base, "latency_threads")
        if absent(fp32_device):
            continue
        for variant in ("ptq", "qat"):
            row = frame_row(frame, fw, variant)
            device, threads = get(row, "latency_device"), get(row, "latency_threads")
            if not absent(device) and device != fp32_device:
                notes.append(
                    f"**{fw}: fp32 latency was measured on `{fp32_device}` but int8 ({variant}) "
                    f"on `{device}` — different devices, so these rows are not a like-for-like "
                    "comparison.**"
                )
            elif not absent(threads) and str(threads) != str(fp32_threads):
                notes.append(
                    f"**{fw}: fp32 latency used {fp32_threads} threads but int8 ({variant}) "
                    f"used {threads} — not a like-for-like comparison.**"
                )
    return notes


def load_notes(frame: pd.DataFrame) -> list[str]:
    """Latency taken while other work competed for the CPU is inflated: say so per row."""
    notes = []
    for row in frame_rows(frame):
        load, cores = get(row, "latency_max_load_1m"), get(row, "cpu_count")
        if not absent(load) and not absent(cores) and load > cores:
            notes.append(
                f"**{row['framework']} {row['variant']}: the 1-minute load average reached "
                f"{load:.1f} on {int(cores)} cores while latency was measured — other work "
                "competed for the CPU, so these latencies are inflated; rerun on a quiet "
                "machine.**"
            )
    return notes


def caveats(data: ReportData) -> list[str]:
    """Latency taken on mixed devices or a busy machine: a status problem, not a footnote."""
    return device_notes(data.frame) + load_notes(data.frame)


def latency_table(data: ReportData) -> Table:
    columns = [
        FRAMEWORK,
        VARIANT,
        PRECISION,
        Column("Batch", "images"),
        Column("p50", "ms", "0.2"),
        Column("p90", "ms", "0.2"),
        Column("p99", "ms", "0.2"),
        Column("p50 per sample", "ms", "0.2"),
        Column("Calls", "n", "count"),
        DEVICE,
        THREADS,
    ]
    own = own_rows(data.latency)
    rows = []
    for r in frame_rows(data.frame):
        mine = own[(own["framework"] == r["framework"]) & (own["variant"] == r["variant"])]
        for lat in mine.sort_values("batch_size", kind="stable").itertuples():
            values = [r["framework"], r["variant"], r["precision"], str(lat.batch_size)]
            values += [lat.p50_ms, lat.p90_ms, lat.p99_ms, lat.per_sample_p50_ms, lat.n]
            rows.append(Row([*values, r["latency_device"], r["latency_threads"]]))
    how = (
        "per-call forward-pass latency in milliseconds (ms) at the given batch size, over n "
        "timed calls, on the stated device and at the run's own thread count; per-sample p50 = "
        "p50 / batch size. Rows at other thread counts are in the batch size x threads table."
    )
    return Table(columns, rows, how, notes=[SAME_DEVICE], empty=NO_LATENCY, wide=True)


def _speedup(data: ReportData, r: pd.Series, batch_size: int, threads: int) -> Any:
    """fp32 / int8 per-sample p50 at one batch size and thread count, on one device only."""
    if r["precision"] != "int8":
        return None
    base = frame_row(data.frame, r["framework"], "baseline")
    fp32 = per_sample(data.latency, r["framework"], "baseline", batch_size, threads)
    int8 = per_sample(data.latency, r["framework"], r["variant"], batch_size, threads)
    if fp32 is None or int8 is None or not int8:
        return None
    fp32_device, device = get(base, "latency_device"), get(r, "latency_device")
    if absent(fp32_device) or fp32_device != device:
        return f"not compared: fp32 on {MISSING if absent(fp32_device) else fp32_device}"
    return fp32 / int8


def latency_sweep_table(data: ReportData) -> Table:
    """Per-sample p50 at every batch size, at the run's threads and again at 1 thread."""
    sizes, sweep = batch_sizes(data.latency), sweep_threads(data.latency)
    ends = sorted({sizes[0], sizes[-1]}) if sizes else []
    columns = [FRAMEWORK, VARIANT, PRECISION, DEVICE, THREADS]
    columns += [Column(f"Batch {b}: p50 per sample", "ms", "0.2") for b in sizes]
    columns += [Column(f"int8 speed-up vs fp32, batch {b}, same device", "x", "0.2") for b in ends]
    rows = []
    for r in frame_rows(data.frame):
        if absent(r["latency_threads"]):
            continue
        own = int(r["latency_threads"])
        for threads in [own, *(t for t in sweep if t != own)]:
            cells = [
                per_sample(data.latency, r["framework"], r["variant"], b, threads) for b in sizes
            ]
            if all(c is None for c in cells):
                continue
            label = f"{threads} (run's own)" if threads == own and sweep else str(threads)
            values = [r["framework"], r["variant"], r["precision"], r["latency_device"], label]
            values += [*cells, *(_speedup(data, r, b, threads) for b in ends)]
            rows.append(Row(values, r["status"]))
    how = (
        "per-sample p50 latency in ms (p50 per forward call / batch size) at each batch size, "
        "first at the run's own thread count, then at 1 thread where the run used more. The "
        "speed-up is fp32 / int8 per-sample p50 at the same batch size and thread count, and "
        "only when both ran on the same device; otherwise the cell says so."
    )
    return Table(columns, rows, how, empty=NO_LATENCY, wide=True)


def sweep_notes(frame: pd.DataFrame) -> list[str]:
    """Variants that could not be re-measured at another thread count, with the reason."""
    return [
        f"**{r['framework']} {r['variant']}:** {one_line(r['latency_sweep_notes'])}"
        for r in frame_rows(frame)
        if not absent(r["latency_sweep_notes"])
    ]


def latency(data: ReportData, figures: list[Figure], n_caveats: int) -> Section:
    t = latency_table(data)
    blocks: list = [Note(f"{n_caveats} latency caveat(s): see Status.")] if n_caveats else []
    blocks += [*figures, t]
    return Section("Latency", blocks, t.how_to_read, "Fig. 4")


def latency_sweep(data: ReportData) -> Section:
    t = latency_sweep_table(data)
    notes = [Note(n, "remark") for n in sweep_notes(data.frame)]
    return Section("Latency by batch size and threads", [t, *notes], t.how_to_read)
