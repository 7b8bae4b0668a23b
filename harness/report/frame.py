"""One pandas row per framework x variant: the table behind results.csv and every section.

Every figure keeps the device and threads it was taken with, so a reader never
compares unlike measurements without being told.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from harness_contract.metrics import VARIANTS, MetricsFile, VariantMetrics

from .profiles import PASSES, category_share, main_device

MIB = 2**20
MISSING = "—"
RUN_HINT = "run `harness compare` or `harness run FRAMEWORK` first"

# Columns before and after the per-batch-size latency block, in CSV order.
LEADING_COLUMNS = [
    "framework",
    "variant",
    "precision",
    "status",
    "reason",
    "quant_flow",
    "accuracy_pct",
    "agreement_with_fp32_pct",
    "accuracy_n",
    "accuracy_device",
    "size_mib",
    "size_format",
    "parameters",
    "size_reduction_pct",
    "train_s",
    "train_epochs",
    "images_per_s",
    "qat_time_increase_pct",
    "qat_time_increase_total_pct",
    "train_device",
    "train_threads",
    "calibration_s",
    "calibration_samples",
    "conversion_s",
    "conversion_device",
]
# After the latency blocks: where latency was taken, then the profiler passes' headline shares.
LATENCY_META_COLUMNS = [
    "latency_device",
    "latency_threads",
    "latency_max_load_1m",
    "latency_sweep_notes",
]
PROFILE_COLUMNS = [
    f"profile_{kind}_{field}"
    for kind in PASSES
    for field in ("status", "device", "convolution_pct", "quantize_pct", "total_ms")
]
MEMORY_PARTS = ("", "training_", "inference_")
TRAILING_COLUMNS = [
    *(f"{part}peak_{kind}_mib" for kind in ("rss", "gpu") for part in MEMORY_PARTS),
    "framework_versions",
    "cpu_model",
    "cpu_count",
    "device",
    "threads",
    "spec_name",
    "spec_digest",
    "seed",
    "dataset_kind",
    "run_status",
]
LATENCY_FIELDS = ("p50_ms", "p90_ms", "p99_ms", "per_sample_p50_ms", "n")
# Counts stay integers in the CSV even when some rows lack them.
COUNT_COLUMNS = {
    "accuracy_n",
    "parameters",
    "train_epochs",
    "train_threads",
    "calibration_samples",
    "threads",
    "cpu_count",
    "seed",
}
# latency_threads is text: a variant measured with mixed devices or threads lists them all.
TEXT_COLUMNS = {
    "framework",
    "variant",
    "precision",
    "status",
    "reason",
    "quant_flow",
    "accuracy_device",
    "size_format",
    "train_device",
    "conversion_device",
    "latency_device",
    "latency_threads",
    "latency_sweep_notes",
    *(f"profile_{kind}_{field}" for kind in PASSES for field in ("status", "device")),
    "framework_versions",
    "cpu_model",
    "cpu_count",
    "device",
    "spec_name",
    "spec_digest",
    "dataset_kind",
    "run_status",
}


# ---------------------------------------------------------------- the frame


def _mib(nbytes: int | None) -> float | None:
    return None if nbytes is None else nbytes / MIB


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100


def _increase_pct(value: float | None, reference: float | None) -> float | None:
    """(value / reference - 1) * 100, or None when either side is missing or zero."""
    if value is None or not reference:
        return None
    return (value / reference - 1) * 100


def _per_epoch(variant: VariantMetrics | None) -> float | None:
    training = variant.training if variant else None
    if training is None or training.epochs == 0:
        return None
    return training.wall_s / training.epochs


def join_values(values: Iterable[Any]) -> Any:
    """One value if all agree, else every distinct value listed, so a mix is visible."""
    distinct = list(dict.fromkeys(values))
    if not distinct:
        return None
    return distinct[0] if len(distinct) == 1 else ", ".join(str(v) for v in distinct)


def versions_text(metrics: MetricsFile) -> str:
    return ", ".join(f"{name} {ver}" for name, ver in metrics.provenance.framework_versions.items())


def own_threads(v: VariantMetrics) -> int | None:
    """The run's own thread count for this variant's latency: its rows come first."""
    return v.latency[0].threads if v.latency else None


def _batch_sizes(metrics: list[MetricsFile]) -> list[int]:
    sizes = {lat.batch_size for m in metrics for v in m.variants.values() for lat in v.latency}
    return sorted(sizes)


def _sweep_threads(metrics: list[MetricsFile]) -> list[int]:
    """Thread counts latency was measured at besides each variant's own (the 1-thread sweep)."""
    counts = {
        lat.threads
        for m in metrics
        for v in m.variants.values()
        for lat in v.latency
        if lat.threads != own_threads(v)
    }
    return sorted(counts)


def _latency_columns(batch_sizes: Sequence[int]) -> list[str]:
    return [f"latency_b{b}_{field}" for b in batch_sizes for field in LATENCY_FIELDS]


def sweep_column(batch_size: int, threads: int) -> str:
    return f"latency_b{batch_size}_t{threads}_per_sample_p50_ms"


def _sweep_columns(batch_sizes: Sequence[int], threads: Sequence[int]) -> list[str]:
    return [sweep_column(b, t) for t in threads for b in batch_sizes]


def _accuracy_cells(v: VariantMetrics) -> dict[str, Any]:
    acc = v.accuracy
    if acc is None:
        return {}
    return {
        "accuracy_pct": _pct(acc.top1),
        "agreement_with_fp32_pct": _pct(acc.agreement_with_fp32),
        "accuracy_n": acc.n,
        "accuracy_device": acc.device,
    }


def _size_cells(v: VariantMetrics, baseline: VariantMetrics | None) -> dict[str, Any]:
    if v.size is None:
        return {}
    base_bytes = baseline.size.bytes if baseline and baseline.size else None
    reduction = (1 - v.size.bytes / base_bytes) * 100 if base_bytes else None
    return {
        "size_mib": _mib(v.size.bytes),
        "size_format": v.size.format,
        "parameters": v.size.parameters,
        "size_reduction_pct": reduction,
    }


def _training_cells(v: VariantMetrics, baseline: VariantMetrics | None) -> dict[str, Any]:
    tr = v.training
    if tr is None:
        return {}
    cells = {
        "train_s": tr.wall_s,
        "train_epochs": tr.epochs,
        "images_per_s": tr.images_per_s,
        "train_device": tr.device,
        "train_threads": tr.threads,
    }
    if v.variant == "qat":  # Table II compares QAT fine-tuning with baseline training
        base_wall = baseline.training.wall_s if baseline and baseline.training else None
        cells["qat_time_increase_pct"] = _increase_pct(_per_epoch(v), _per_epoch(baseline))
        cells["qat_time_increase_total_pct"] = _increase_pct(tr.wall_s, base_wall)
    return cells


def _conversion_cells(v: VariantMetrics) -> dict[str, Any]:
    conv = v.conversion
    if conv is None:
        return {}
    return {
        "quant_flow": conv.flow,
        "calibration_s": conv.calibration_s,
        "calibration_samples": conv.calibration_samples,
        "conversion_s": conv.conversion_s,
        "conversion_device": conv.device,
    }


def _latency_cells(
    v: VariantMetrics, batch_sizes: Sequence[int], sweep_threads: Sequence[int]
) -> dict[str, Any]:
    """The main columns hold the run's own thread count only; other thread counts get
    their own per-sample columns, so a 1-thread row never stands in for the run's."""
    cells: dict[str, Any] = {}
    own = own_threads(v)
    rows = [lat for lat in v.latency if lat.threads == own]
    for lat in rows:
        prefix = f"latency_b{lat.batch_size}"
        cells[f"{prefix}_p50_ms"] = lat.p50_ms
        cells[f"{prefix}_p90_ms"] = lat.p90_ms
        cells[f"{prefix}_p99_ms"] = lat.p99_ms
        cells[f"{prefix}_per_sample_p50_ms"] = lat.p50_per_sample_ms
        cells[f"{prefix}_n"] = lat.n
    for threads in sweep_threads:
        for b in batch_sizes:
            lat = v.latency_at(b, threads)
            if lat is not None:
                cells[sweep_column(b, threads)] = lat.p50_per_sample_ms
    cells["latency_device"] = join_values(lat.device for lat in v.latency)
    cells["latency_threads"] = join_values(str(lat.threads) for lat in rows)
    loads = [lat.load_1m for lat in v.latency if lat.load_1m is not None]
    cells["latency_max_load_1m"] = max(loads) if loads else None
    notes = [n for n in v.notes if n.startswith("no latency at")]
    cells["latency_sweep_notes"] = "; ".join(notes) if notes else None
    return cells


def _profile_cells(v: VariantMetrics) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for kind in PASSES:
        p = v.profile(kind)
        if p is None:
            continue
        prefix = f"profile_{kind}"
        cells[f"{prefix}_status"] = p.status
        if p.status == "ok" and p.breakdown:
            device = main_device(p)
            cells[f"{prefix}_device"] = device
            cells[f"{prefix}_convolution_pct"] = _pct(category_share(p, "convolution"))
            cells[f"{prefix}_quantize_pct"] = _pct(category_share(p, "quantize"))
            us = p.total_us.get(device)
            cells[f"{prefix}_total_ms"] = None if us is None else us / 1000
    return cells


def _memory_cells(v: VariantMetrics) -> dict[str, Any]:
    if v.memory is None:
        return {}
    return {
        f"{part}peak_{kind}_mib": _mib(getattr(v.memory, f"{part}peak_{kind}_bytes"))
        for kind in ("rss", "gpu")
        for part in MEMORY_PARTS
    }


def _run_cells(m: MetricsFile) -> dict[str, Any]:
    return {
        "framework": m.framework,
        "framework_versions": versions_text(m),
        "cpu_model": m.provenance.cpu_model,
        "cpu_count": m.provenance.cpu_count,
        "device": m.provenance.device,
        "threads": m.provenance.threads,
        "spec_name": m.spec_name,
        "spec_digest": m.spec_digest,
        "seed": m.seed,
        "dataset_kind": m.dataset.kind,
        "run_status": m.status,
    }


def _missing_variant_cells(m: MetricsFile, name: str) -> dict[str, Any]:
    """A variant the runner never reached still gets a row, so gaps are visible."""
    return {
        "variant": name,
        "precision": "fp32" if name == "baseline" else "int8",
        "status": "missing",
        "reason": f"not in metrics.json (run status: {m.status})",
    }


def _variant_row(
    m: MetricsFile, name: str, batch_sizes: Sequence[int], sweep_threads: Sequence[int]
) -> dict[str, Any]:
    row = _run_cells(m)
    v = m.variant(name)
    if v is None:
        return row | _missing_variant_cells(m, name)
    baseline = m.variant("baseline")
    row |= {"variant": name, "precision": v.precision, "status": v.status, "reason": v.reason}
    for cells in (
        _accuracy_cells(v),
        _size_cells(v, baseline),
        _training_cells(v, baseline),
        _conversion_cells(v),
        _latency_cells(v, batch_sizes, sweep_threads),
        _profile_cells(v),
        _memory_cells(v),
    ):
        row |= cells
    return row


def _column_kind(column: str) -> str:
    if column in TEXT_COLUMNS:
        return "text"
    if column in COUNT_COLUMNS or (column.startswith("latency_b") and column.endswith("_n")):
        return "count"
    return "float"


def _set_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing numbers become NaN (floats) or <NA> (counts), never None in a number column."""
    for column in frame.columns:
        kind = _column_kind(column)
        if kind == "count":
            frame[column] = pd.to_numeric(frame[column]).astype("Int64")
        elif kind == "float":
            frame[column] = pd.to_numeric(frame[column]).astype("float64")
    return frame


def results_frame(metrics: list[MetricsFile]) -> pd.DataFrame:
    """One row per framework x variant (baseline, ptq, qat), failed and skipped included."""
    sizes, sweep = _batch_sizes(metrics), _sweep_threads(metrics)
    columns = (
        LEADING_COLUMNS
        + _latency_columns(sizes)
        + _sweep_columns(sizes, sweep)
        + LATENCY_META_COLUMNS
        + PROFILE_COLUMNS
        + TRAILING_COLUMNS
    )
    rows = [_variant_row(m, name, sizes, sweep) for m in metrics for name in VARIANTS]
    return _set_dtypes(pd.DataFrame(rows, columns=columns))
