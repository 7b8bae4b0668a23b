"""The sweep's statistics, from the points' own metrics.json files and latency samples.

Per framework x variant x grid cell, over seeds: n, mean, sd and the Student-t interval
of top-1, agreement with fp32 and training time; the latency p50 of all seeds' raw
samples pooled, with its bootstrap interval. Paired differences over seeds (same seed,
hence the same initial weights and input stream): PTQ - baseline and QAT - baseline per
framework, PyTorch - TensorFlow per variant, each with its interval and a verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness_contract.errors import HarnessError

from .. import stats
from ..reproduce.latency_band import load_samples
from ..run_metrics import read_run
from .index import PointRecord, SweepDir
from .plan import SweepSpec, served_cells

# Figures summarized over seeds: (key, label, unit).
METRICS = (
    ("top1_pct", "top-1", "%"),
    ("agreement_pct", "agreement with fp32", "%"),
    ("train_s", "training time", "s"),
)
DIFFERENCE_METRIC = "top1_pct"  # the headline figure the paired differences are about


@dataclass
class Observation:
    """One variant of one point: a seed's figures."""

    framework: str
    variant: str
    cell: str
    seed: int
    values: dict[str, float | None]
    # (batch, threads) -> (p50 ms, samples file or None)
    latency: dict[tuple[int, int], tuple[float, Path | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class SummaryRow:
    framework: str
    variant: str
    cell: str
    metric: str
    unit: str
    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None
    seeds: list[int]


@dataclass(frozen=True)
class LatencyRow:
    framework: str
    variant: str
    cell: str
    batch_size: int
    threads: int
    runs: int
    samples: int  # raw per-call samples pooled over the runs (0: none saved)
    p50_ms: float  # median of the pooled samples (of the runs' p50s when none were saved)
    low_ms: float | None
    high_ms: float | None


@dataclass(frozen=True)
class DifferenceRow:
    comparison: str  # "ptq - baseline", "qat - baseline", "pytorch - tensorflow"
    within: str  # the framework (variant differences) or the variant (framework ones)
    cell: str
    metric: str
    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None
    verdict: str
    seeds: list[int]


@dataclass
class SweepStats:
    confidence: float
    summary: list[SummaryRow]
    latency: list[LatencyRow]
    differences: list[DifferenceRow]
    problems: list[str]
    points: dict[str, int]  # status -> count

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def observations(
    sweep: SweepDir, records: dict[str, PointRecord], spec: SweepSpec | None = None
) -> tuple[list[Observation], list[str]]:
    """Every ok variant of every finished point's metrics.json (unreadable ones named),
    under each grid cell the point stands for (with ``spec``: a TensorFlow point serves
    every cell that differs only in a pytorch.* key)."""
    out: list[Observation] = []
    problems: list[str] = []
    for record in records.values():
        run_dir = sweep.point_dir(record.name)
        if record.status != "ok" or not run_dir.is_dir():
            continue
        try:
            results = read_run(run_dir)
        except HarnessError as exc:
            problems.append(f"{record.name}: {exc.one_line()}")
            continue
        problems += [f"{record.name}: {p}" for p in results.problems]
        cells = served_cells(spec, record.point) if spec else [record.point.cell_label]
        for fw_dir, metrics in results.found:
            for name, variant in metrics.variants.items():
                if variant.status != "ok":
                    continue
                acc = variant.accuracy
                agreement = acc.agreement_with_fp32 if acc else None
                values = {
                    "top1_pct": None if acc is None else acc.top1 * 100,
                    "agreement_pct": None if agreement is None else agreement * 100,
                    "train_s": variant.training.wall_s if variant.training else None,
                }
                latency = {
                    (lat.batch_size, lat.threads): (
                        lat.p50_ms,
                        fw_dir.path / lat.samples_file if lat.samples_file else None,
                    )
                    for lat in variant.latency
                }
                out += [
                    Observation(metrics.framework, name, cell, metrics.seed, values, latency)
                    for cell in cells
                ]
    return out, problems


def compute(
    sweep: SweepDir, records: dict[str, PointRecord], spec: SweepSpec | None = None
) -> SweepStats:
    obs, problems = observations(sweep, records, spec)
    counts: dict[str, int] = {}
    for record in records.values():
        counts[record.status] = counts.get(record.status, 0) + 1
    return SweepStats(
        confidence=stats.CONFIDENCE,
        summary=_summary(obs),
        latency=_latency(obs),
        differences=_differences(obs),
        problems=problems,
        points=counts,
    )


def _groups(obs: list[Observation]) -> dict[tuple[str, str, str], list[Observation]]:
    groups: dict[tuple[str, str, str], list[Observation]] = {}
    for o in sorted(obs, key=lambda o: (o.cell, o.framework, _variant_order(o.variant), o.seed)):
        groups.setdefault((o.framework, o.variant, o.cell), []).append(o)
    return groups


def _variant_order(name: str) -> int:
    return ("baseline", "ptq", "qat").index(name) if name in ("baseline", "ptq", "qat") else 9


def _summary(obs: list[Observation]) -> list[SummaryRow]:
    rows = []
    for (framework, variant, cell), group in _groups(obs).items():
        for key, _label, unit in METRICS:
            pairs = [(o.seed, o.values[key]) for o in group if o.values.get(key) is not None]
            if not pairs:
                continue
            interval = stats.mean_interval([v for _, v in pairs])
            rows.append(
                SummaryRow(
                    framework, variant, cell, key, unit, interval.n, interval.mean,
                    interval.sd, interval.low, interval.high, [s for s, _ in pairs],
                )
            )  # fmt: skip
    return rows


def _latency(obs: list[Observation]) -> list[LatencyRow]:
    rows = []
    for (framework, variant, cell), group in _groups(obs).items():
        keys = sorted({k for o in group for k in o.latency}, key=lambda k: (-k[1], k[0]))
        for batch, threads in keys:
            entries = [o.latency[(batch, threads)] for o in group if (batch, threads) in o.latency]
            loaded = [load_samples(path) for _, path in entries]
            pooled = [s.ravel() for s in loaded if s is not None]
            if pooled and len(pooled) == len(entries):
                samples = np.concatenate(pooled)
                interval = stats.median_interval(samples)
                p50 = float(np.median(samples))
            else:  # a run without saved samples: no bootstrap, the runs' own p50s
                samples, interval = np.empty(0), None
                p50 = float(np.median([p for p, _ in entries]))
            low, high = interval if interval else (None, None)
            rows.append(
                LatencyRow(
                    framework, variant, cell, batch, threads, len(entries), samples.size,
                    p50, low, high,
                )
            )  # fmt: skip
    return rows


def _paired(
    a: list[Observation], b: list[Observation], metric: str
) -> tuple[list[int], list[float], list[float]]:
    """Values of both sides for the seeds both have (a seed missing on one side drops out)."""
    left = {o.seed: o.values.get(metric) for o in a}
    right = {o.seed: o.values.get(metric) for o in b}
    seeds = sorted(s for s in left if s in right and left[s] is not None and right[s] is not None)
    return seeds, [left[s] for s in seeds], [right[s] for s in seeds]  # type: ignore[misc]


def _differences(obs: list[Observation]) -> list[DifferenceRow]:
    groups = _groups(obs)
    frameworks = sorted({f for f, _, _ in groups})
    cells = list(dict.fromkeys(c for _, _, c in groups))
    rows = []
    for cell in cells:
        for framework in frameworks:
            base = groups.get((framework, "baseline", cell), [])
            for variant in ("ptq", "qat"):
                rows += _row(
                    f"{variant} - baseline",
                    framework,
                    cell,
                    groups.get((framework, variant, cell), []),
                    base,
                )
        if {"pytorch", "tensorflow"} <= set(frameworks):
            for variant in ("baseline", "ptq", "qat"):
                torch = groups.get(("pytorch", variant, cell), [])
                tf = groups.get(("tensorflow", variant, cell), [])
                rows += _row("pytorch - tensorflow", variant, cell, torch, tf)
    return rows


def _row(
    comparison: str, within: str, cell: str, a: list[Observation], b: list[Observation]
) -> list[DifferenceRow]:
    seeds, left, right = _paired(a, b, DIFFERENCE_METRIC)
    if not seeds:
        return []
    diff = stats.paired_difference(left, right)
    i = diff.interval
    return [
        DifferenceRow(
            comparison, within, cell, DIFFERENCE_METRIC, i.n, i.mean, i.sd, i.low, i.high,
            diff.verdict, seeds,
        )
    ]  # fmt: skip
