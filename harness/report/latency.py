"""Latency as one long, typed table: a row per framework x variant x runtime x batch size
x threads, the variant's primary runtime first, then its rungs (harness_contract.runtimes).

The report's latency tables and figures read it directly; results.csv pivots it into
its per-batch-size columns. Nothing reads numbers back out of column names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from harness.report.variants import primary_runtime
from harness.results.stats import median_interval
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import VARIANTS, MetricsFile
from harness_contract.metrics.figures import EnergyStats, LatencyStats

# The statistics each batch size gets in results.csv, at the variant's own threads.
CSV_FIELDS = ("p50_ms", "p50_low_ms", "p50_high_ms", "p90_ms", "p99_ms", "per_sample_p50_ms", "n")
# Added to them when some row's energy was measured (a GPU run): board energy per image
# and mean board power over the timed calls.
ENERGY_FIELDS = ("energy_per_image_mj", "mean_power_w")
KEY = ["framework", "variant", "runtime"]
DTYPES = {
    "framework": "object",
    "variant": "object",
    "runtime": "object",
    "primary": "bool",  # the variant's own runtime (its figures), or one of its rungs
    "precision": "object",
    "batch_size": "int64",
    "threads": "int64",
    "own": "bool",  # at the variant's own (the run's) thread count
    "device": "object",
    "p50_ms": "float64",
    # The 95 % bootstrap interval of p50 from the row's raw samples (NaN without them).
    "p50_low_ms": "float64",
    "p50_high_ms": "float64",
    "p90_ms": "float64",
    "p99_ms": "float64",
    "per_sample_p50_ms": "float64",
    "n": "int64",
    # Board energy over the timed calls, in millijoules (NaN: not measured, or an older file).
    "energy_per_call_mj": "float64",
    "energy_per_image_mj": "float64",
    "mean_power_w": "float64",
    "energy_source": "object",  # "nvml energy counter" or "nvml power samples"
    "energy_reason": "object",  # why it was not measured (None: measured, or not recorded)
}


def p50_interval(lat: LatencyStats, where: FrameworkDir | None) -> tuple[float, float]:
    """The bootstrap interval of a row's p50 from its raw samples, or NaNs when they are
    not at hand (a report built from metrics alone, or a samples file that is gone)."""
    if where is None or lat.samples_file is None:
        return float("nan"), float("nan")
    try:
        samples = np.load(where.path / lat.samples_file)
    except (OSError, ValueError):
        return float("nan"), float("nan")
    interval = median_interval(samples)
    return interval if interval is not None else (float("nan"), float("nan"))


def _rows(
    framework: str,
    variant: str,
    runtime: str | None,
    primary: bool,
    precision: str,
    latency: list[LatencyStats],
    where: FrameworkDir | None,
) -> list[dict[str, Any]]:
    own = latency[0].threads if latency else None  # the run's own threads come first
    # Intervals only at the run's own threads: the rows every table and figure shows.
    intervals = [p50_interval(lat, where if lat.threads == own else None) for lat in latency]
    return [
        {
            "framework": framework,
            "variant": variant,
            "runtime": runtime,
            "primary": primary,
            "precision": precision,
            "batch_size": lat.batch_size,
            "threads": lat.threads,
            "own": lat.threads == own,
            "device": lat.device,
            "p50_ms": lat.p50_ms,
            "p50_low_ms": low,
            "p50_high_ms": high,
            "p90_ms": lat.p90_ms,
            "p99_ms": lat.p99_ms,
            "per_sample_p50_ms": lat.p50_per_sample_ms,
            "n": lat.n,
            **_energy(lat.energy),
        }
        for lat, (low, high) in zip(latency, intervals, strict=True)
    ]


def _mj(joules: float | None) -> float:
    return float("nan") if joules is None else joules * 1000


def _energy(energy: EnergyStats | None) -> dict[str, Any]:
    """The energy columns of one row: NaN, with the reason, where it was not measured."""
    measured = energy if energy is not None and energy.status == "measured" else None
    power = None if measured is None else measured.mean_power_w
    return {
        "energy_per_call_mj": _mj(None if measured is None else measured.per_call_j),
        "energy_per_image_mj": _mj(None if measured is None else measured.per_image_j),
        "mean_power_w": float("nan") if power is None else power,
        "energy_source": None if measured is None else measured.source,
        "energy_reason": None if energy is None or measured is not None else energy.reason,
    }


def energy_measured(latency: pd.DataFrame) -> bool:
    """Whether any row's energy was measured (only then has the report energy columns)."""
    return bool(latency["energy_per_call_mj"].notna().any())


def csv_fields(latency: pd.DataFrame) -> tuple[str, ...]:
    return CSV_FIELDS + (ENERGY_FIELDS if energy_measured(latency) else ())


def latency_table(
    metrics: list[MetricsFile], dirs: Mapping[str, FrameworkDir] | None = None
) -> pd.DataFrame:
    """Every latency measurement, in metrics order (framework, variant, its primary
    runtime then its rungs, as measured). ``dirs``: each framework's directory, where the
    raw samples are read for p50's interval."""
    rows: list[dict[str, Any]] = []
    for m in metrics:
        where = (dirs or {}).get(m.framework)
        for name in VARIANTS:
            v = m.variant(name)
            if v is None:
                continue
            runtime = primary_runtime(m.framework, v)
            rows += _rows(m.framework, name, runtime, True, v.precision, v.latency, where)
            for r in v.rungs:
                rows += _rows(m.framework, name, r.runtime, False, r.precision, r.latency, where)
    return pd.DataFrame(rows, columns=list(DTYPES)).astype(DTYPES)


def primary_rows(latency: pd.DataFrame) -> pd.DataFrame:
    """Only each variant's own runtime (what the paper's figures show)."""
    return latency[latency["primary"]]


def batch_sizes(latency: pd.DataFrame) -> list[int]:
    return sorted(int(b) for b in latency["batch_size"].unique())


def end_batch_sizes(latency: pd.DataFrame) -> list[int]:
    """Batch 1 and the largest measured batch (just one when they coincide)."""
    sizes = batch_sizes(latency)
    return sorted({sizes[0], sizes[-1]}) if sizes else []


def sweep_threads(latency: pd.DataFrame) -> list[int]:
    """Thread counts measured besides each variant's own (the 1-thread sweep)."""
    return sorted(int(t) for t in latency.loc[~latency["own"], "threads"].unique())


def own_rows(latency: pd.DataFrame) -> pd.DataFrame:
    """One row per framework x variant x batch size at the variant's own threads."""
    own = latency[latency["own"]]
    return own.drop_duplicates([*KEY, "batch_size"], keep="last")


def at_threads(latency: pd.DataFrame, threads: int) -> pd.DataFrame:
    """One row per framework x variant x batch size at this thread count."""
    rows = latency[latency["threads"] == threads]
    return rows.drop_duplicates([*KEY, "batch_size"], keep="first")


def per_sample(
    latency: pd.DataFrame,
    framework: str,
    variant: str,
    batch_size: int,
    threads: int,
    runtime: str | None = None,
) -> float | None:
    """A variant's per-sample p50 at one batch size and thread count on ``runtime`` (None:
    its primary runtime); None when not measured."""
    rows = latency[(latency["framework"] == framework) & (latency["variant"] == variant)]
    rows = rows[rows["primary"]] if runtime is None else rows[rows["runtime"] == runtime]
    own = rows[rows["own"]]
    if not own.empty and int(own["threads"].iloc[0]) == threads:
        rows = own_rows(rows)
    else:
        rows = at_threads(rows, threads)
    match = rows.loc[rows["batch_size"] == batch_size, "per_sample_p50_ms"]
    return None if match.empty else float(match.iloc[0])


def csv_columns(latency: pd.DataFrame) -> list[str]:
    sizes, sweep = batch_sizes(latency), sweep_threads(latency)
    fields = csv_fields(latency)
    return [f"latency_b{b}_{field}" for b in sizes for field in fields] + [
        f"latency_b{b}_t{t}_per_sample_p50_ms" for t in sweep for b in sizes
    ]


def csv_count_columns(latency: pd.DataFrame) -> list[str]:
    return [f"latency_b{b}_n" for b in batch_sizes(latency)]


def csv_block(latency: pd.DataFrame) -> pd.DataFrame:
    """results.csv's latency columns, one row per framework x variant x runtime: each batch
    size's statistics at the row's own threads, then per-sample p50 at every other count."""
    if latency.empty:
        return pd.DataFrame(columns=KEY)
    main = own_rows(latency).pivot(
        index=KEY, columns="batch_size", values=list(csv_fields(latency))
    )
    main.columns = [f"latency_b{b}_{field}" for field, b in main.columns]
    blocks = [main]
    for t in sweep_threads(latency):
        sweep = at_threads(latency, t).pivot(
            index=KEY, columns="batch_size", values="per_sample_p50_ms"
        )
        sweep.columns = [f"latency_b{b}_t{t}_per_sample_p50_ms" for b in sweep.columns]
        blocks.append(sweep)
    return pd.concat(blocks, axis=1).reset_index()
