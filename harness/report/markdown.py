"""report.md: status first, then the paper's tables (I-III), latency, memory, provenance."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness_contract.breakdown import CATEGORIES
from harness_contract.metrics import VARIANTS, MetricsFile

from ..traces import TraceEntry, trace_entries
from .frame import MISSING, join_values, sweep_column, versions_text
from .profiles import PassBreakdown, pass_breakdowns

# ---------------------------------------------------------------- formatting


def _absent(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _num(value: Any, decimals: int) -> str:
    return MISSING if _absent(value) else f"{float(value):,.{decimals}f}"


def _ms(value: Any) -> str:
    return _num(value, 2)


# MiB and % share the 2-decimal format of ms; separate names keep call sites readable.
_mib_cell = _pct_cell = _ms


def _sec(value: Any) -> str:
    return _num(value, 1)


def _count(value: Any) -> str:
    return MISSING if _absent(value) else f"{int(value):,}"


def _text(value: Any) -> str:
    return MISSING if _absent(value) or value == "" else str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table; cells are escaped so a '|' cannot break it."""

    def line(cells: Sequence[str]) -> str:
        escaped = (_one_line(str(c)).replace("|", "\\|") for c in cells)
        return "| " + " | ".join(escaped) + " |"

    body = [line(headers), "|" + "|".join(" --- " for _ in headers) + "|"]
    body += [line(row) for row in rows]
    return "\n".join(body)


def _section(title: str, how_to_read: str, *parts: str) -> str:
    return "\n\n".join([f"## {title}", f"*How to read this:* {how_to_read}", *parts])


# ---------------------------------------------------------------- frame lookups


def _frameworks(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["framework"]))


def _row(frame: pd.DataFrame, framework: str, variant: str) -> pd.Series | None:
    match = frame[(frame["framework"] == framework) & (frame["variant"] == variant)]
    return None if match.empty else match.iloc[0]


def _rows(frame: pd.DataFrame, variants: Sequence[str] = VARIANTS) -> list[pd.Series]:
    return [row for _, row in frame.iterrows() if row["variant"] in variants]


def _get(row: pd.Series | None, column: str) -> Any:
    return None if row is None or column not in row.index else row[column]


_MAIN_LATENCY = re.compile(r"^latency_b(\d+)_per_sample_p50_ms$")
_SWEEP_LATENCY = re.compile(r"^latency_b\d+_t(\d+)_per_sample_p50_ms$")


def _frame_batch_sizes(frame: pd.DataFrame) -> list[int]:
    """Batch sizes measured at the run's own thread count."""
    return sorted({int(m[1]) for c in frame.columns if (m := _MAIN_LATENCY.match(c))})


def _frame_sweep_threads(frame: pd.DataFrame) -> list[int]:
    """Thread counts measured besides each variant's own (normally just 1)."""
    return sorted({int(m[1]) for c in frame.columns if (m := _SWEEP_LATENCY.match(c))})


# ---------------------------------------------------------------- tables


@dataclass(frozen=True)
class Table:
    """One report table, renderer-neutral: report.md and report.html both draw it."""

    headers: list[str]
    rows: list[list[str]]
    sources: list[pd.Series | None]  # the frame row behind each table row (None: a summary)
    how: str  # the "how to read this" sentence, starting in lower case


# ---------------------------------------------------------------- sections


def _title(metrics: list[MetricsFile]) -> str:
    first = metrics[0]
    run_ids = ", ".join(f"`{rid}`" for rid in dict.fromkeys(m.run_id for m in metrics))
    lines = [
        f"# Quantization comparison — run {run_ids}",
        f"Spec `{first.spec_name}` (digest `{first.spec_digest}`), seed {first.seed}, "
        f"dataset kind **{first.dataset.kind}** (`{first.dataset.path}`).",
        "Frameworks: " + ", ".join(f"{m.framework} ({m.status})" for m in metrics) + ".",
    ]
    lines += _mismatch_warnings(metrics)
    synthetic = [m.framework for m in metrics if m.dataset.kind == "synthetic"]
    if synthetic:
        lines.append(
            f"> **Warning — synthetic data ({', '.join(synthetic)}):** accuracy figures are not "
            "meaningful on synthetic data. Sizes and timings still describe the model and the "
            "machine."
        )
    return "\n\n".join(lines)


def _mismatch_warnings(metrics: list[MetricsFile]) -> list[str]:
    """Frameworks that ran different specs, seeds or data are not a comparison (rule 3)."""
    checks = {
        "spec digest": lambda m: m.spec_digest,
        "seed": lambda m: m.seed,
        "dataset kind": lambda m: m.dataset.kind,
        "dataset digest": lambda m: m.dataset.digest,
        "initial weight": lambda m: m.initial_weights,
    }
    warnings = []
    for label, key in checks.items():
        if len({key(m) for m in metrics}) > 1:
            values = ", ".join(f"{m.framework} `{key(m)}`" for m in metrics)
            warnings.append(
                f"> **Not comparable:** the frameworks ran with different {label}s ({values})."
            )
    return warnings


def _status(metrics: list[MetricsFile], frame: pd.DataFrame, problems: Sequence[str]) -> str:
    lines = [f"- **unreadable** {p} — left out of every table" for p in problems]
    for m in metrics:
        if m.status != "complete":
            error = f": {_one_line(m.error)}" if m.error else ""
            lines.append(f"- **{m.framework}** run is {m.status}{error}")
    for row in _rows(frame):
        if row["status"] != "ok":
            reason = "no reason recorded" if _absent(row["reason"]) else row["reason"]
            lines.append(
                f"- **{row['framework']} / {row['variant']}** {row['status']}: {_one_line(reason)}"
            )
    if not lines:
        lines = ["All frameworks complete; every variant ok."]
    return "## Status\n\n" + "\n".join(lines)


def accuracy_table(frame: pd.DataFrame) -> Table:
    headers = [
        "Framework",
        "Variant",
        "Precision",
        "Status",
        "Top-1 (%)",
        "Agreement with fp32 (%)",
        "Test images (count)",
        "Device",
    ]
    sources = _rows(frame)
    rows = [
        [
            r["framework"],
            r["variant"],
            r["precision"],
            r["status"],
            _pct_cell(r["accuracy_pct"]),
            _pct_cell(r["agreement_with_fp32_pct"]),
            _count(r["accuracy_n"]),
            _text(r["accuracy_device"]),
        ]
        for r in sources
    ]
    how = (
        "top-1 accuracy on the test images, in %; agreement is the share of test images "
        "where the variant predicts the same class as its framework's fp32 baseline, in %. "
        "Device is where evaluation ran; accuracy does not depend on threads."
    )
    return Table(headers, rows, sources, how)


def _accuracy(frame: pd.DataFrame) -> str:
    t = accuracy_table(frame)
    return _section("Accuracy", t.how, markdown_table(t.headers, t.rows))


def size_table(frame: pd.DataFrame) -> Table:
    headers = [
        "Framework",
        "Variant",
        "Baseline fp32 (MiB)",
        "Baseline format",
        "Quantized int8 (MiB)",
        "Quantized format",
        "Reduction (%)",
        "Parameters (count)",
    ]
    rows, sources = [], _rows(frame, ("ptq", "qat"))
    for r in sources:
        base = _row(frame, r["framework"], "baseline")
        rows.append(
            [
                r["framework"],
                r["variant"],
                _mib_cell(_get(base, "size_mib")),
                _text(_get(base, "size_format")),
                _mib_cell(r["size_mib"]),
                _text(r["size_format"]),
                _pct_cell(r["size_reduction_pct"]),
                _count(r["parameters"]),
            ]
        )
    how = (
        "serialized model size in MiB (bytes / 2^20; the paper's 'MB' are MiB) in the stated "
        "format; reduction = (1 - quantized / baseline) x 100 within one framework. Size does "
        "not depend on device or threads. Formats differ between frameworks, so compare "
        "reductions across frameworks, not raw sizes."
    )
    return Table(headers, rows, sources, how)


def _size(frame: pd.DataFrame) -> str:
    t = size_table(frame)
    return _section("Model size (Table I)", t.how, markdown_table(t.headers, t.rows))


def _training_row(frame: pd.DataFrame, framework: str) -> list[str]:
    base = _row(frame, framework, "baseline")
    qat = _row(frame, framework, "qat")

    def per_epoch(row: pd.Series | None) -> float | None:
        wall, epochs = _get(row, "train_s"), _get(row, "train_epochs")
        return None if _absent(wall) or _absent(epochs) or not epochs else wall / epochs

    devices = [d for d in (_get(base, "train_device"), _get(qat, "train_device")) if not _absent(d)]
    threads = [
        t for t in (_get(base, "train_threads"), _get(qat, "train_threads")) if not _absent(t)
    ]
    return [
        framework,
        _sec(_get(base, "train_s")),
        _count(_get(base, "train_epochs")),
        _sec(per_epoch(base)),
        _sec(_get(qat, "train_s")),
        _count(_get(qat, "train_epochs")),
        _sec(per_epoch(qat)),
        _pct_cell(_get(qat, "qat_time_increase_pct")),
        _pct_cell(_get(qat, "qat_time_increase_total_pct")),
        _sec(_get(base, "images_per_s")),
        _sec(_get(qat, "images_per_s")),
        _text(join_values(devices)),
        _text(join_values(int(t) for t in threads)),
    ]


def training_table(frame: pd.DataFrame) -> Table:
    headers = [
        "Framework",
        "Baseline (s)",
        "Baseline epochs (count)",
        "Baseline (s/epoch)",
        "QAT (s)",
        "QAT epochs (count)",
        "QAT (s/epoch)",
        "Increase per epoch (%)",
        "Increase total (%)",
        "Baseline throughput (images/s)",
        "QAT throughput (images/s)",
        "Device",
        "Threads (count)",
    ]
    rows = [_training_row(frame, fw) for fw in _frameworks(frame)]
    how = (
        "wall-clock training time in seconds (s) and s/epoch, throughput in images/s, on the "
        "stated device and thread count. Baseline is fp32 training from scratch; QAT is "
        "quantization-aware fine-tuning of that baseline."
    )
    return Table(headers, rows, [None] * len(rows), how)


# Why the two increase figures differ; both reports print it under Table II.
TRAINING_EXPLAINED = (
    "*Increase per epoch* = (QAT s/epoch / baseline s/epoch - 1) x 100: the cost of the "
    "fake-quantization ops, comparable even though QAT runs fewer epochs than the baseline. "
    "*Increase total* = (QAT s / baseline s - 1) x 100: the paper's Table II measure, which "
    "also reflects the different epoch counts."
)


def _training(frame: pd.DataFrame) -> str:
    t = training_table(frame)
    table = markdown_table(t.headers, t.rows)
    return _section("Training time (Table II)", t.how, table, TRAINING_EXPLAINED)


def calibration_table(frame: pd.DataFrame) -> Table:
    headers = [
        "Framework",
        "Variant",
        "Flow",
        "Calibration (s)",
        "Calibration samples (count)",
        "Conversion (s)",
        "Device",
        "Threads (count)",
    ]
    sources = _rows(frame, ("ptq", "qat"))
    rows = [
        [
            r["framework"],
            r["variant"],
            _text(r["quant_flow"]),
            _sec(r["calibration_s"]),
            _count(r["calibration_samples"]),
            _sec(r["conversion_s"]),
            _text(r["conversion_device"]),
            _count(r["threads"]),
        ]
        for r in sources
    ]
    how = (
        "wall-clock seconds (s) on the stated device and thread count. PTQ calibrates on the "
        "stated number of training images, then converts; QAT only converts (no calibration)."
    )
    return Table(headers, rows, sources, how)


def _calibration(frame: pd.DataFrame) -> str:
    t = calibration_table(frame)
    return _section("Calibration (Table III)", t.how, markdown_table(t.headers, t.rows))


def _latency_rows(frame: pd.DataFrame) -> list[list[str]]:
    rows = []
    for r in _rows(frame):
        for b in _frame_batch_sizes(frame):
            prefix = f"latency_b{b}"
            if _absent(r[f"{prefix}_p50_ms"]):
                continue
            rows.append(
                [
                    r["framework"],
                    r["variant"],
                    r["precision"],
                    str(b),
                    _ms(r[f"{prefix}_p50_ms"]),
                    _ms(r[f"{prefix}_p90_ms"]),
                    _ms(r[f"{prefix}_p99_ms"]),
                    _ms(r[f"{prefix}_per_sample_p50_ms"]),
                    _count(r[f"{prefix}_n"]),
                    _text(r["latency_device"]),
                    _text(r["latency_threads"]),
                ]
            )
    return rows


def _device_notes(frame: pd.DataFrame) -> list[str]:
    """Fairness rule 5: fp32 and int8 latencies from different devices are called out."""
    notes = []
    for fw in _frameworks(frame):
        base = _row(frame, fw, "baseline")
        fp32_device, fp32_threads = _get(base, "latency_device"), _get(base, "latency_threads")
        if _absent(fp32_device):
            continue
        for variant in ("ptq", "qat"):
            row = _row(frame, fw, variant)
            device, threads = _get(row, "latency_device"), _get(row, "latency_threads")
            if not _absent(device) and device != fp32_device:
                notes.append(
                    f"**{fw}: fp32 latency was measured on `{fp32_device}` but int8 ({variant}) "
                    f"on `{device}` — different devices, so these rows are not a like-for-like "
                    "comparison.**"
                )
            elif not _absent(threads) and str(threads) != str(fp32_threads):
                notes.append(
                    f"**{fw}: fp32 latency used {fp32_threads} threads but int8 ({variant}) "
                    f"used {threads} — not a like-for-like comparison.**"
                )
    return notes


def _load_notes(frame: pd.DataFrame) -> list[str]:
    """Latency taken while other work competed for the CPU is inflated: say so per row."""
    notes = []
    for row in _rows(frame):
        load, cores = _get(row, "latency_max_load_1m"), _get(row, "cpu_count")
        if not _absent(load) and not _absent(cores) and load > cores:
            notes.append(
                f"**{row['framework']} {row['variant']}: the 1-minute load average reached "
                f"{load:.1f} on {int(cores)} cores while latency was measured — other work "
                "competed for the CPU, so these latencies are inflated; rerun on a quiet "
                "machine.**"
            )
    return notes


def latency_table(frame: pd.DataFrame) -> Table:
    headers = [
        "Framework",
        "Variant",
        "Precision",
        "Batch (images)",
        "p50 (ms)",
        "p90 (ms)",
        "p99 (ms)",
        "p50 per sample (ms)",
        "Calls (n)",
        "Device",
        "Threads (count)",
    ]
    rows = _latency_rows(frame)
    how = (
        "per-call forward-pass latency in milliseconds (ms) at the given batch size, over n "
        "timed calls, on the stated device and at the run's own thread count; per-sample p50 = "
        "p50 / batch size. Rows at other thread counts are in the batch size x threads table."
    )
    return Table(headers, rows, [None] * len(rows), how)


def _latency(frame: pd.DataFrame) -> str:
    t = latency_table(frame)
    same_device = (
        "int8 and fp32 rows are compared only on the same device with the same threads; "
        "rows from different devices are not a speed-up."
    )
    table = markdown_table(t.headers, t.rows) if t.rows else "No latency was measured."
    notes = [*_device_notes(frame), *_load_notes(frame)]
    return _section("Latency", t.how, table, same_device, *notes)


def _per_sample(row: pd.Series | None, batch_size: int, threads: str) -> Any:
    """A variant's per-sample p50 at one batch size and thread count: the main columns
    hold its own thread count, the sweep columns the others."""
    if row is None:
        return None
    if str(_get(row, "latency_threads")) == threads:
        return _get(row, f"latency_b{batch_size}_per_sample_p50_ms")
    return _get(row, sweep_column(batch_size, int(threads))) if threads.isdigit() else None


def _speedup(frame: pd.DataFrame, r: pd.Series, batch_size: int, threads: str) -> str:
    """fp32 / int8 per-sample p50 at one batch size and thread count, on one device only."""
    if r["precision"] != "int8":
        return MISSING
    base = _row(frame, r["framework"], "baseline")
    fp32, int8 = _per_sample(base, batch_size, threads), _per_sample(r, batch_size, threads)
    if _absent(fp32) or _absent(int8) or not int8:
        return MISSING
    fp32_device, device = _get(base, "latency_device"), _get(r, "latency_device")
    if _absent(fp32_device) or fp32_device != device:
        return f"not compared: fp32 on {_text(fp32_device)}"
    return f"{fp32 / int8:,.2f}"


def latency_sweep_table(frame: pd.DataFrame) -> Table:
    """Per-sample p50 at every batch size, at the run's threads and again at 1 thread."""
    sizes, sweep = _frame_batch_sizes(frame), _frame_sweep_threads(frame)
    ends = sorted({sizes[0], sizes[-1]}) if sizes else []
    headers = [
        "Framework",
        "Variant",
        "Precision",
        "Device",
        "Threads (count)",
        *(f"Batch {b}: p50 per sample (ms)" for b in sizes),
        *(f"int8 speed-up vs fp32, batch {b}, same device (x)" for b in ends),
    ]
    rows, sources = [], []
    for r in _rows(frame):
        if _absent(r["latency_threads"]):
            continue
        own = str(r["latency_threads"])
        for threads in [own, *(str(t) for t in sweep if str(t) != own)]:
            cells = [_per_sample(r, b, threads) for b in sizes]
            if all(_absent(c) for c in cells):
                continue
            label = f"{threads} (run's own)" if threads == own and sweep else threads
            rows.append(
                [
                    r["framework"],
                    r["variant"],
                    r["precision"],
                    _text(r["latency_device"]),
                    label,
                    *(_ms(c) for c in cells),
                    *(_speedup(frame, r, b, threads) for b in ends),
                ]
            )
            sources.append(r)
    how = (
        "per-sample p50 latency in ms (p50 per forward call / batch size) at each batch size, "
        "first at the run's own thread count, then at 1 thread where the run used more. The "
        "speed-up is fp32 / int8 per-sample p50 at the same batch size and thread count, and "
        "only when both ran on the same device; otherwise the cell says so."
    )
    return Table(headers, rows, sources, how)


def latency_sweep_notes(frame: pd.DataFrame) -> list[str]:
    """Variants that could not be re-measured at another thread count, with the reason."""
    return [
        f"**{r['framework']} {r['variant']}:** {_one_line(r['latency_sweep_notes'])}"
        for r in _rows(frame)
        if "latency_sweep_notes" in r.index and not _absent(r["latency_sweep_notes"])
    ]


def _latency_sweep(frame: pd.DataFrame) -> str:
    t = latency_sweep_table(frame)
    table = markdown_table(t.headers, t.rows) if t.rows else "No latency was measured."
    return _section("Latency by batch size and threads", t.how, table, *latency_sweep_notes(frame))


# ---------------------------------------------------------------- profiles


def _share_cell(value: float | None) -> str:
    return _num(None if value is None else value * 100, 1)


def breakdown_table(rows: Sequence[PassBreakdown]) -> Table:
    headers = [
        "Pass",
        "Variant",
        "Framework",
        "Precision",
        "Device",
        "Threads (count)",
        *(f"{label} (%)" for label in CATEGORIES.values()),
        "Op self time (ms)",
        "Profiled (steps x batch)",
        "Status",
    ]
    body, sources = [], []
    for r in rows:
        ok = r.status == "ok"
        shares = [_share_cell(r.shares.get(c, 0.0)) if ok else MISSING for c in CATEGORIES]
        body.append(
            [
                r.kind,
                r.variant,
                r.framework,
                r.precision,
                r.device_label,
                _count(r.threads),
                *shares,
                _ms(r.total_ms),
                f"{r.steps} x {r.batch_size}",
                r.status if ok else f"{r.status}: see Traces",
            ]
        )
        sources.append(pd.Series({"status": "ok" if ok else "skipped"}))
    how = (
        "share of profiled op self time by category, in %, per pass and device (cpu: host "
        "ops; gpu: kernels), summed over the profiled steps (after the profiler's wait and "
        "warm-up steps). Train passes run training steps at the training batch; inference "
        "passes run forward passes at measure.profile.inference_batch_size. Op self time is "
        "the total over all profiled steps with the profiler on: it is not comparable to the "
        "latency tables. Both frameworks' ops are sorted into categories by the same rules "
        "(harness_contract.breakdown); shares on one device add up to 100 %."
    )
    return Table(headers, body, sources, how)


def top_ops_table(rows: Sequence[PassBreakdown], top: int = 5) -> Table:
    headers = ["Pass", "Variant", "Framework", "Device", f"Top {top} ops by self time (share %)"]
    body = [
        [
            r.kind,
            r.variant,
            r.framework,
            r.device_label,
            "; ".join(f"{_short(op.name)} {op.share * 100:.1f}" for op in r.top_ops[:top]),
        ]
        for r in rows
        if r.status == "ok" and r.top_ops
    ]
    how = (
        "the ops with the most self time in each pass, with their share of that device's "
        "profiled op time, in %."
    )
    return Table(headers, body, [None] * len(body), how)


def _short(name: str, width: int = 60) -> str:
    name = _one_line(name)
    return name if len(name) <= width else name[: width - 1] + "…"


def _size_mib(nbytes: int | None) -> str:
    return MISSING if nbytes is None else f"{nbytes / 2**20:,.2f}"


def traces_table(entries: Sequence[TraceEntry]) -> Table:
    headers = [
        "Framework",
        "Variant",
        "Pass",
        "Status",
        "Device",
        "Tool",
        "Trace",
        "Size (MiB)",
        "Open with (or why there is none)",
    ]
    rows, sources = [], []
    for e in entries:
        opener = e.open_command(absolute=False)
        rows.append(
            [
                e.framework,
                e.variant,
                e.kind or MISSING,
                e.status,
                _text(e.device),
                _text(e.tool),
                _text(e.trace),
                _size_mib(e.size_bytes) if e.status == "ok" else MISSING,
                opener or _one_line(e.reason or "no reason recorded"),
            ]
        )
        sources.append(pd.Series({"status": "ok" if opener else "skipped"}))
    how = (
        "every profiler pass, its trace (path relative to the run directory) and the command "
        "that opens it; the command harness traces RUN_DIR prints the same list with "
        "absolute paths (add --json for machine reading). Chrome/Perfetto JSON traces open in "
        "https://ui.perfetto.dev or chrome://tracing; TensorBoard log directories open in "
        "TensorBoard's Profile tab (needs tensorboard-plugin-profile). Where a pass has no "
        "trace, the last column says why."
    )
    return Table(headers, rows, sources, how)


def _breakdown(rows: Sequence[PassBreakdown]) -> str:
    t, tops = breakdown_table(rows), top_ops_table(rows)
    if not t.rows:
        return _section("Where the time goes", t.how, "No profiler passes were recorded.")
    parts = [markdown_table(t.headers, t.rows)]
    if tops.rows:
        parts += [f"*Top ops:* {tops.how}", markdown_table(tops.headers, tops.rows)]
    return _section("Where the time goes", t.how, *parts)


def _traces(entries: Sequence[TraceEntry]) -> str:
    t = traces_table(entries)
    table = markdown_table(t.headers, t.rows) if t.rows else "No profiler passes were recorded."
    return _section("Traces", t.how, table)


def memory_table(frame: pd.DataFrame) -> Table:
    headers = [
        "Framework",
        "Variant",
        "Peak RSS (MiB)",
        "Training RSS (MiB)",
        "Inference RSS (MiB)",
        "Peak GPU (MiB)",
        "Training GPU (MiB)",
        "Inference GPU (MiB)",
        "Device",
        "Threads (count)",
    ]
    sources = _rows(frame)
    rows = [
        [
            r["framework"],
            r["variant"],
            *(
                _mib_cell(r[f"{part}peak_{kind}_mib"])
                for kind in ("rss", "gpu")
                for part in ("", "training_", "inference_")
            ),
            _text(r["device"]),
            _count(r["threads"]),
        ]
        for r in sources
    ]
    how = (
        "peak resident memory of the runner process and peak GPU memory (the framework "
        "allocator's), in MiB (bytes / 2^20): over the whole variant's phase, then over its "
        "training alone and its inference alone (evaluation and latency runs). '—' where a "
        "variant has no such part (PTQ does not train) or no GPU was used. Device and "
        "threads are those the runner used."
    )
    return Table(headers, rows, sources, how)


def _memory(frame: pd.DataFrame) -> str:
    t = memory_table(frame)
    return _section("Memory", t.how, markdown_table(t.headers, t.rows))


def _profilers_text(m: MetricsFile) -> str:
    passes = [p for v in m.variants.values() for p in v.profiles]
    if not passes:
        return "no profiler passes recorded"
    tools = Counter(p.tool for p in passes if p.status == "ok" and p.tool)
    parts = [f"{tool} ({n} pass{'es' if n > 1 else ''})" for tool, n in tools.items()]
    others = Counter(p.status for p in passes if p.status != "ok")
    parts += [f"{n} {status}" for status, n in sorted(others.items())]
    return ", ".join(parts)


def provenance_items(m: MetricsFile) -> list[tuple[str, str]]:
    """Label and value (with markdown `code` marks) per fact; both reports list these."""
    p, d = m.provenance, m.dataset
    gpu = ", ".join(
        f"{label} {value}"
        for label, value in (
            ("GPU", p.gpu),
            ("CUDA", p.cuda),
            ("cuDNN", p.cudnn),
            ("driver", p.gpu_driver),
        )
        if value
    )
    who = [f"uid {p.uid}"] if p.uid is not None else []
    if p.network_interfaces:
        who.append(f"network interfaces: {', '.join(p.network_interfaces)}")
    return [
        ("Framework versions", f"{versions_text(m) or MISSING}; harness {p.harness_version}"),
        ("Initial weights", f"`{m.initial_weights}`"),
        ("Spec", f"`{m.spec_name}`, digest `{m.spec_digest}`, seed {m.seed}"),
        ("Runtime", "; ".join([p.runtime, *who])),
        ("Python", f"{_one_line(p.python)}; platform: {p.platform}; host: {p.hostname}"),
        ("CPU", f"{p.cpu_model} ({p.cpu_count} cores); flags: {', '.join(p.cpu_flags) or MISSING}"),
        ("Threads", f"{p.threads}; device: {p.device}" + (f"; {gpu}" if gpu else "")),
        (
            "Dataset",
            f"`{d.path}` ({d.kind}, {d.train_images:,} train / {d.test_images:,} test images), "
            f"digest `{d.digest}`",
        ),
        ("Profilers", _profilers_text(m)),
        ("Run", f"`{m.run_id}`; started: {m.started_at}; updated: {m.updated_at}; {m.status}"),
    ]


def _provenance(metrics: list[MetricsFile]) -> str:
    parts = [
        f"### {m.framework}\n\n" + "\n".join(f"- {k}: {v}" for k, v in provenance_items(m))
        for m in metrics
    ]
    how = "where and with what each framework ran; threads are the intra-op thread count."
    return _section("Provenance", how, *parts)


def render_markdown(
    metrics: list[MetricsFile],
    frame: pd.DataFrame,
    problems: Sequence[str] = (),
    traces: Sequence[TraceEntry] | None = None,
) -> str:
    """The human report: status first, then the paper's tables, then provenance.

    ``traces`` are the run's trace entries checked on disk (write_report passes them);
    without them the Traces section says what metrics.json recorded.
    """
    entries = traces if traces is not None else [e for m in metrics for e in trace_entries(m)]
    sections = [
        _title(metrics),
        _status(metrics, frame, problems),
        _accuracy(frame),
        _size(frame),
        _training(frame),
        _calibration(frame),
        _latency(frame),
        _latency_sweep(frame),
        _memory(frame),
        _breakdown(pass_breakdowns(metrics)),
        _traces(entries),
        _provenance(metrics),
    ]
    return "\n\n".join(sections) + "\n"
