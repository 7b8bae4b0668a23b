"""The one latency method every runner uses (after MLPerf LoadGen and TFLite's benchmark_model).

Warm up by count and by time, then time single calls until both a minimum count
and a minimum duration are reached, or a cap on either stops it. The callable
must do only the work being timed (inputs prepared beforehand) and, on an
accelerator, must synchronize before returning. The board's energy over the same timed
calls is read beside them (study.energy: NVML on a GPU; "not measured" with the reason on
a CPU).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness_contract.metrics.figures import LatencyStats
from harness_contract.spec import LatencySpec
from harness_contract.study.energy import EnergyMeter, meter_for


@dataclass(frozen=True)
class LatencyRun:
    stats: LatencyStats
    samples_ms: np.ndarray  # every timed call, in order, kept so any statistic can be redone


def measure_latency(
    call: Callable[[], object],
    rule: LatencySpec,
    *,
    batch_size: int,
    device: str,
    threads: int,
    clock: Callable[[], int] = time.perf_counter_ns,
    meter: EnergyMeter | None = None,
) -> LatencyRun:
    """``meter``: how the window's energy is read (None: the one for ``device``)."""
    load_1m = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    _warm_up(call, rule, clock)
    meter = meter if meter is not None else meter_for(device)
    samples: list[int] = []
    meter.start()  # warm-up excluded: the energy is the timed calls' only
    started = clock()
    min_ns, max_ns = rule.min_seconds * 1e9, rule.max_seconds * 1e9
    while True:
        t0 = clock()
        call()
        t1 = clock()
        samples.append(t1 - t0)
        elapsed = t1 - started
        if len(samples) >= rule.min_count and elapsed >= min_ns:
            reason = "min_count_and_duration"
            break
        if len(samples) >= rule.max_count:
            reason = "max_count"
            break
        if elapsed >= max_ns:
            reason = "max_seconds"
            break
    total_s = (clock() - started) / 1e9
    energy = meter.stop(len(samples), batch_size)
    samples_ms = np.asarray(samples, dtype=np.float64) / 1e6
    stats = summarize(samples_ms, batch_size, device, threads, total_s, reason)
    return LatencyRun(stats.model_copy(update={"load_1m": load_1m, "energy": energy}), samples_ms)


def _warm_up(call: Callable[[], object], rule: LatencySpec, clock: Callable[[], int]) -> None:
    count, started = 0, clock()
    while count < rule.warmup_count or (clock() - started) < rule.warmup_seconds * 1e9:
        call()
        count += 1
        # Never let warm-up alone run past the measuring cap.
        if clock() - started >= rule.max_seconds * 1e9:
            break


def summarize(
    samples_ms: np.ndarray,
    batch_size: int,
    device: str,
    threads: int,
    total_s: float,
    stop_reason: str,
) -> LatencyStats:
    p50, p90, p99 = np.percentile(samples_ms, [50, 90, 99])
    return LatencyStats(
        batch_size=batch_size,
        device=device,
        threads=threads,
        n=int(samples_ms.size),
        total_s=float(total_s),
        mean_ms=float(samples_ms.mean()),
        std_ms=float(samples_ms.std(ddof=1)) if samples_ms.size > 1 else 0.0,
        min_ms=float(samples_ms.min()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        max_ms=float(samples_ms.max()),
        stop_reason=stop_reason,  # type: ignore[arg-type]
    )
