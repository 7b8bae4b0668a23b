"""Latency (Fig. 4) at the run's own threads, and per-sample latency by batch size and threads,
both read from the long latency table."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.report.frame import ReportData
from harness.report.latency import (
    batch_sizes,
    end_batch_sizes,
    energy_measured,
    own_rows,
    per_sample,
    sweep_threads,
)
from harness.report.model import (
    MISSING,
    Column,
    Figure,
    Note,
    Row,
    Section,
    Table,
    absent,
    one_line,
)
from harness.report.sections_results import (
    DEVICE,
    FRAMEWORK,
    PRECISION,
    THREADS,
    VARIANT,
    frame_row,
    get,
)
from harness.report.sections_results import variant_rows as frame_rows
from harness.results.stats import RESAMPLES
from harness_contract.runtimes import label

RUNTIME = Column("Runtime")
SAME_DEVICE = (
    "int8 and fp32 rows are compared only on the same runtime and device with the same "
    "threads; rows of different runtimes or devices are never a speed-up."
)


def runtime_rows(data: ReportData) -> list[pd.Series]:
    """Every variant on its own runtime, each followed by its rungs (results.csv order)."""
    return frame_rows(data.csv)


def runtime_label(r: pd.Series) -> str:
    slug = r.get("runtime")
    return label(r["framework"], None if absent(slug) else slug)


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


def _interval(low: float, high: float) -> str | None:
    return None if absent(low) or absent(high) else f"{low:.2f}–{high:.2f}"


ENERGY_COLUMNS = [
    Column("Energy per call", "mJ", "0.2"),
    Column("Energy per image", "mJ", "0.3"),
    Column("Board power, mean", "W", "0.1"),
]
ENERGY_HOW = (
    "Energy is the whole GPU board's over the timed calls (warm-up excluded), idle power "
    "included, read through NVML on the device in the row ({sources}): per call = joules "
    "over the window / calls, per image = per call / batch size, in millijoules (mJ); mean "
    "board power in watts (W)."
)


def energy_notes(own: pd.DataFrame, measured: bool) -> list[str]:
    """How energy was read (a GPU run) and, per reason, the rows that have none."""
    notes = []
    if measured:
        sources = ", ".join(sorted(set(own["energy_source"].dropna())))
        notes.append(ENERGY_HOW.format(sources=sources))
    unmeasured = own[own["energy_reason"].notna()]
    for reason, rows in unmeasured.groupby("energy_reason", sort=False):
        which = ", ".join(dict.fromkeys(f"{r.framework} {r.variant}" for r in rows.itertuples()))
        devices = ", ".join(dict.fromkeys(rows["device"]))
        notes.append(f"Energy: not measured for {which} (on {devices}): {reason}.")
    return notes


def latency_table(data: ReportData) -> Table:
    measured = energy_measured(data.latency)
    columns = [
        FRAMEWORK,
        VARIANT,
        RUNTIME,
        PRECISION,
        Column("Batch", "images"),
        Column("p50", "ms", "0.2"),
        Column("p50 95% interval, within one run", "ms", align="right"),
        Column("p90", "ms", "0.2"),
        Column("p99", "ms", "0.2"),
        Column("p50 per sample", "ms", "0.2"),
        Column("Calls", "n", "count"),
        *(ENERGY_COLUMNS if measured else []),
        DEVICE,
        THREADS,
    ]
    own = own_rows(data.latency)
    rows = []
    for r in runtime_rows(data):
        mine = own[
            (own["framework"] == r["framework"])
            & (own["variant"] == r["variant"])
            & (own["runtime"] == r["runtime"])
        ]
        for lat in mine.sort_values("batch_size", kind="stable").itertuples():
            values = [r["framework"], r["variant"], runtime_label(r), r["precision"]]
            values += [str(lat.batch_size), lat.p50_ms, _interval(lat.p50_low_ms, lat.p50_high_ms)]
            values += [lat.p90_ms, lat.p99_ms, lat.per_sample_p50_ms, lat.n]
            if measured:
                values += [lat.energy_per_call_mj, lat.energy_per_image_mj, lat.mean_power_w]
            rows.append(Row([*values, r["latency_device"], r["latency_threads"]]))
    how = (
        "per-call forward-pass latency in milliseconds (ms) at the given batch size, over n "
        "timed calls, on the stated runtime and device at the run's own thread count; each "
        "variant's own runtime first, then the same model on the framework's other runtimes; "
        "per-sample p50 = p50 / batch size; the p50 interval is within this one run: a 95% "
        "percentile bootstrap over the row's raw per-call samples (scipy.stats.bootstrap, "
        f"{RESAMPLES:,} resamples). It says how well this run pinned its own p50 down, not "
        "what another run would give (`harness sweep` over seeds gives that): two p50s whose "
        "intervals overlap are not told apart by this run. Rows at other thread counts are in "
        "the batch size x threads table."
    )
    notes = [SAME_DEVICE, *energy_notes(own, measured)]
    return Table(columns, rows, how, notes=notes, empty=NO_LATENCY, wide=True)


def fp32_like(data: ReportData, r: pd.Series) -> pd.Series | None:
    """The baseline's row on the same runtime as ``r`` (its own or a rung), if measured."""
    rows = data.csv
    match = rows[
        (rows["framework"] == r["framework"])
        & (rows["variant"] == "baseline")
        & (rows["runtime"] == r["runtime"])
    ]
    return None if match.empty else match.iloc[0]


def speedup(data: ReportData, r: pd.Series, batch_size: int, threads: int) -> Any:
    """fp32 / int8 per-sample p50 at one batch size and thread count, on one runtime and
    one device only; otherwise the cell says why there is no ratio."""
    if r["precision"] != "int8":
        return None
    base = fp32_like(data, r)
    if base is None or base["status"] != "ok":
        return f"not compared: no fp32 on {runtime_label(r)}"
    runtime = r["runtime"]
    fp32 = per_sample(data.latency, r["framework"], "baseline", batch_size, threads, runtime)
    int8 = per_sample(data.latency, r["framework"], r["variant"], batch_size, threads, runtime)
    if fp32 is None or int8 is None or not int8:
        return None
    fp32_device, device = get(base, "latency_device"), get(r, "latency_device")
    if absent(fp32_device) or fp32_device != device:
        return f"not compared: fp32 on {MISSING if absent(fp32_device) else fp32_device}"
    return fp32 / int8


def latency_sweep_table(data: ReportData) -> Table:
    """Per-sample p50 at every batch size, at the run's threads and again at 1 thread."""
    sizes, sweep = batch_sizes(data.latency), sweep_threads(data.latency)
    ends = end_batch_sizes(data.latency)
    columns = [FRAMEWORK, VARIANT, RUNTIME, PRECISION, DEVICE, THREADS]
    columns += [Column(f"Batch {b}: p50 per sample", "ms", "0.2") for b in sizes]
    columns += [
        Column(f"int8 speed-up vs fp32 on the same runtime, batch {b}", "x", "0.2") for b in ends
    ]
    rows = []
    for r in runtime_rows(data):
        if absent(r["latency_threads"]):
            continue
        own = int(r["latency_threads"])
        for threads in [own, *(t for t in sweep if t != own)]:
            cells = [
                per_sample(data.latency, r["framework"], r["variant"], b, threads, r["runtime"])
                for b in sizes
            ]
            if all(c is None for c in cells):
                continue
            shown = f"{threads} (run's own)" if threads == own and sweep else str(threads)
            values = [r["framework"], r["variant"], runtime_label(r), r["precision"]]
            values += [r["latency_device"], shown]
            values += [*cells, *(speedup(data, r, b, threads) for b in ends)]
            rows.append(Row(values, r["status"]))
    how = (
        "per-sample p50 latency in ms (p50 per forward call / batch size) at each batch size, "
        "first at the run's own thread count, then at 1 thread where the run used more. The "
        "speed-up is fp32 / int8 per-sample p50 at the same batch size and thread count, only "
        "between two rows of one runtime on one device (LiteRT int8 over LiteRT fp32, never "
        "over Keras); otherwise the cell says why there is no ratio."
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
