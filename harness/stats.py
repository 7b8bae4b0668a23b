"""Honest statistics over repeated runs: the interval of a mean (Student t), a paired
difference with its interval and a plain verdict, and the bootstrap interval of a median
from raw latency samples. Every function takes plain numbers, so the sweep report and a
single ``harness compare`` share one definition of each figure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 1000
SEED = 0  # a fixed generator: the same samples always give the same interval
BOOTSTRAP_BATCH = 100  # resamples held in memory at once (thousands of samples each)


@dataclass(frozen=True)
class MeanInterval:
    """n values summarized: their mean, sample standard deviation (ddof=1) and the
    Student-t interval of the mean. With one value there is no spread: sd and the
    interval are None."""

    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> MeanInterval:
    """mean ± t(1-(1-c)/2, n-1) · sd/√n, with scipy's t quantile."""
    from scipy.stats import t

    data = _finite(values, "mean_interval")
    n = data.size
    mean = float(data.mean())
    if n < 2:
        return MeanInterval(n, mean, None, None, None, confidence)
    sd = float(data.std(ddof=1))
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return MeanInterval(n, mean, sd, mean - half, mean + half, confidence)


# The verdicts a paired difference can reach, as the report prints them.
DISTINGUISHABLE = "distinguishable from zero"
NOT_DISTINGUISHABLE = "not distinguishable from zero at {n} seeds"
TOO_FEW = "too few pairs to judge ({n})"


@dataclass(frozen=True)
class PairedDifference:
    """a − b over pairs that share a seed: the mean difference and its t interval."""

    interval: MeanInterval

    @property
    def n(self) -> int:
        return self.interval.n

    @property
    def distinguishable(self) -> bool | None:
        """True when the interval leaves out zero; None when it cannot be computed."""
        low, high = self.interval.low, self.interval.high
        if low is None or high is None:
            return None
        return low > 0 or high < 0

    @property
    def verdict(self) -> str:
        if self.distinguishable is None:
            return TOO_FEW.format(n=self.n)
        if self.distinguishable:
            return DISTINGUISHABLE
        return NOT_DISTINGUISHABLE.format(n=self.n)


def paired_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> PairedDifference:
    """The paired t interval of a − b (same seed, same initial weights in each pair):
    pairing removes the seed-to-seed spread both sides share."""
    left, right = _finite(a, "paired_difference"), _finite(b, "paired_difference")
    if left.size != right.size:
        raise ValueError(f"paired_difference needs equal lengths, got {left.size} and {right.size}")
    return PairedDifference(mean_interval(left - right, confidence))


def median_interval(
    samples: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE, seed: int = SEED
) -> tuple[float, float] | None:
    """The percentile-bootstrap interval (scipy.stats.bootstrap) of the median of raw
    per-call samples, e.g. a latency p50; None with fewer than two samples."""
    from scipy.stats import bootstrap

    data = np.asarray(samples, dtype=float).ravel()
    if data.size < 2:
        return None
    result = bootstrap(
        (data,),
        np.median,
        n_resamples=RESAMPLES,
        confidence_level=confidence,
        method="percentile",  # BCa's jackknife costs O(n^2) on thousands of samples
        vectorized=True,
        batch=BOOTSTRAP_BATCH,
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


def _finite(values: Sequence[float] | np.ndarray, who: str) -> np.ndarray:
    data = np.asarray(values, dtype=float).ravel()
    if data.size == 0:
        raise ValueError(f"{who} needs at least one value")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{who} got a value that is not finite: {data.tolist()}")
    return data
