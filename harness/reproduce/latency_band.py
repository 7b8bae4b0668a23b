"""Is a rerun's latency within noise of the original's? A bootstrap 95% interval of the
ratio new p50 / old p50, from both runs' raw per-call samples: 1.0 inside means the two
medians cannot be told apart. Latency never decides "bit-identical"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# One bootstrap setting for every interval the harness prints (harness.results.stats).
from harness.results.stats import BOOTSTRAP_BATCH, CONFIDENCE, RESAMPLES, SEED

MIN_SAMPLES = 2


@dataclass(frozen=True)
class Band:
    ratio: float  # new p50 / old p50
    low: float | None  # the interval; None when the samples are too few or missing
    high: float | None

    @property
    def within_noise(self) -> bool | None:
        if self.low is None or self.high is None:
            return None
        return self.low <= 1.0 <= self.high

    def describe(self) -> str:
        if self.low is None or self.high is None:
            return f"{self.ratio:.2f}x (no samples to judge noise)"
        verdict = "within noise" if self.within_noise else "outside noise"
        return f"{self.ratio:.2f}x [{self.low:.2f}, {self.high:.2f}] {verdict}"


def _median_ratio(new: np.ndarray, old: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(new, axis=axis) / np.median(old, axis=axis)


def p50_ratio_band(old: np.ndarray, new: np.ndarray, seed: int = SEED) -> Band:
    """The ratio of medians and its percentile bootstrap interval (scipy), resampling
    each run's samples on its own (the runs are independent, not paired)."""
    from scipy.stats import bootstrap

    old, new = np.asarray(old, dtype=float).ravel(), np.asarray(new, dtype=float).ravel()
    ratio = float(np.median(new) / np.median(old))
    if min(old.size, new.size) < MIN_SAMPLES:
        return Band(ratio, None, None)
    result = bootstrap(
        (new, old),
        _median_ratio,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",  # BCa's jackknife costs O(n^2) on thousands of samples
        vectorized=True,
        batch=BOOTSTRAP_BATCH,  # bounds memory: resamples of each sample set at a time
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Band(ratio, float(interval.low), float(interval.high))


def load_samples(path: Path | None) -> np.ndarray | None:
    """A run's saved per-call milliseconds, or None when it saved none or it is unreadable."""
    if path is None or not path.is_file():
        return None
    try:
        samples = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return samples if samples.size else None
