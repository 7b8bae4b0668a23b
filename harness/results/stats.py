"""Honest statistics over repeated runs and within one: the interval of a mean (Student
t), a paired difference with its p-value and a plain verdict, Holm's adjustment across a
family of comparisons, the run-level interval of a latency p50 over seeds, the bootstrap
interval of one run's own p50, and one run's accuracy (Wilson interval, McNemar's exact
test). Every function takes plain numbers, so the sweep report and a single ``harness
compare`` share one definition of each figure; scipy and statsmodels do the arithmetic."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 9999  # scipy.stats.bootstrap's own default
SEED = 0  # a fixed generator: the same samples always give the same interval
BOOTSTRAP_BATCH = 100  # resamples held in memory at once (thousands of samples each)
MIN_PAIRS = 3  # fewer pairs give an interval but no verdict: two seeds say too little
PERCENT = (0.0, 100.0)
NONNEGATIVE = (0.0, math.inf)

NO_SPREAD = "no spread observed (n = {n})"


@dataclass(frozen=True)
class MeanInterval:
    """n values summarized: their mean, sample standard deviation (ddof=1) and the
    Student-t interval of the mean. With one value, or n identical values, there is no
    interval: low and high are None (a zero-width interval would claim certainty)."""

    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None
    confidence: float = CONFIDENCE
    clipped: tuple[float, float] | None = None  # the bounds it was cut to, when it was

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean

    @property
    def no_spread(self) -> bool:
        return self.n >= 2 and self.sd == 0.0

    @property
    def note(self) -> str | None:
        """What a reader must know beside the interval, or None."""
        if self.no_spread:
            return NO_SPREAD.format(n=self.n)
        if self.clipped == NONNEGATIVE:
            return "clipped at 0"
        if self.clipped is not None:
            low, high = self.clipped
            unit = " %" if self.clipped == PERCENT else ""
            return f"clipped to [{low:g}, {high:g}]{unit}"
        return None


def mean_interval(
    values: Sequence[float],
    confidence: float = CONFIDENCE,
    bounds: tuple[float, float] | None = None,
) -> MeanInterval:
    """mean ± t(1-(1-c)/2, n-1) · sd/√n, with scipy's t quantile; cut to ``bounds`` (a
    percentage never leaves [0, 100]) and marked clipped when it had to be."""
    from scipy.stats import t

    data = _finite(values, "mean_interval")
    n = data.size
    mean = float(data.mean())
    if n < 2:
        return MeanInterval(n, mean, None, None, None, confidence)
    if _all_equal(data):
        return MeanInterval(n, mean, 0.0, None, None, confidence)
    sd = float(data.std(ddof=1))
    low, high = t.interval(confidence, n - 1, loc=mean, scale=sd / math.sqrt(n))
    low, high, clipped = float(low), float(high), None
    if bounds is not None and (low < bounds[0] or high > bounds[1]):
        low, high, clipped = max(low, bounds[0]), min(high, bounds[1]), bounds
    return MeanInterval(n, mean, sd, low, high, confidence, clipped)


def runs_interval(p50s: Sequence[float], confidence: float = CONFIDENCE) -> MeanInterval:
    """A latency over seeds, with the run as the unit: the mean of the runs' own p50s and
    the Student-t interval over them. Calls within one run share its caches, clocks and
    neighbours, so thousands of them are no evidence about what the next run gives; the
    runs are. t rather than a bootstrap over runs: with 3-5 runs a bootstrap has only a
    handful of distinct resamples and undercovers, and a run's p50 (a median of many
    calls) is close to normal. Never below zero."""
    return mean_interval(p50s, confidence, NONNEGATIVE)


# The verdicts a paired difference can reach, as the report prints them.
DISTINGUISHABLE = "distinguishable from zero"
NOT_DISTINGUISHABLE = "not distinguishable from zero at {n} seeds"
TOO_FEW = "too few pairs to judge (n = {n}; a verdict needs {min})"


@dataclass(frozen=True)
class PairedDifference:
    """a − b over pairs that share a seed: the mean difference, its t interval and the
    paired t test's two-sided p-value (None where no verdict is given)."""

    interval: MeanInterval
    p_value: float | None = None

    @property
    def n(self) -> int:
        return self.interval.n

    @property
    def distinguishable(self) -> bool | None:
        """True when the interval leaves out zero; None below MIN_PAIRS or without spread."""
        low, high = self.interval.low, self.interval.high
        if self.n < MIN_PAIRS or low is None or high is None:
            return None
        return low > 0 or high < 0

    @property
    def verdict(self) -> str:
        if self.n < MIN_PAIRS:
            return TOO_FEW.format(n=self.n, min=MIN_PAIRS)
        if self.interval.no_spread:
            return NO_SPREAD.format(n=self.n)
        if self.distinguishable:
            return DISTINGUISHABLE
        return NOT_DISTINGUISHABLE.format(n=self.n)


def paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    confidence: float = CONFIDENCE,
    bounds: tuple[float, float] | None = None,
) -> PairedDifference:
    """The paired t interval of a − b (same seed, same initial weights in each pair):
    pairing removes the seed-to-seed spread both sides share. Its p-value is scipy's
    ttest_rel, the same test as the interval, so the two never disagree."""
    from scipy.stats import ttest_rel

    left, right = _finite(a, "paired_difference"), _finite(b, "paired_difference")
    if left.size != right.size:
        raise ValueError(f"paired_difference needs equal lengths, got {left.size} and {right.size}")
    interval = mean_interval(left - right, confidence, bounds)
    p_value = None
    if interval.n >= MIN_PAIRS and interval.low is not None:
        p_value = float(ttest_rel(left, right).pvalue)
    return PairedDifference(interval, p_value)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (statsmodels' multipletests) across one family of
    comparisons; a comparison without a p-value stays None and is not counted."""
    from statsmodels.stats.multitest import multipletests

    tested = [i for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    if tested:
        adjusted = multipletests([p_values[i] for i in tested], method="holm")[1]
        for i, p in zip(tested, adjusted, strict=True):
            out[i] = float(p)
    return out


def median_interval(
    samples: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE, seed: int = SEED
) -> tuple[float, float] | None:
    """Within one run: the percentile-bootstrap interval (scipy.stats.bootstrap) of the
    median of that run's raw per-call samples, its own p50. It says how well this run
    pinned its own p50 down, not what another run would give (see ``runs_interval``);
    None with fewer than two samples."""
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


def wilson_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a top-1 (a fraction) on ``n`` test images: inside
    [0, 1] by construction, and honest near 0 and 1 where the normal one is not."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(correct, n, alpha=1 - confidence, method="wilson")
    return float(low), float(high)


def mcnemar_p(only_this_correct: int, only_reference_correct: int) -> float:
    """McNemar's exact test of two classifiers on the same test images: only the images
    one gets right and the other wrong carry information (a two-sided binomial test on
    them); the images both get right or both wrong cancel out."""
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[0, only_this_correct], [only_reference_correct, 0]]
    return float(mcnemar(table, exact=True).pvalue)


def _all_equal(data: np.ndarray) -> bool:
    """Identical up to float rounding (70.2 - 70.0 is not exactly 80.2 - 80.0)."""
    return float(np.ptp(data)) <= 1e-9 * max(1.0, float(np.abs(data).max()))


def _finite(values: Sequence[float] | np.ndarray, who: str) -> np.ndarray:
    data = np.asarray(values, dtype=float).ravel()
    if data.size == 0:
        raise ValueError(f"{who} needs at least one value")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{who} got a value that is not finite: {data.tolist()}")
    return data
