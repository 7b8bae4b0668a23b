"""The statistics of issue 17 at the level of harness.results.stats: the run is the unit of a
latency interval over seeds (checked by simulation), zero spread is not certainty, fewer
than three pairs give no verdict, Holm adjusts a cell's comparisons, intervals of a
percentage stay in [0, 100], and one run's accuracy gets Wilson and McNemar."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import lfilter
from scipy.stats import t, ttest_rel

from harness.results import stats

TRUE_P50_MS = 10.0
RUNS, CALLS = 5, 1000
RUN_SPREAD = 0.03  # run-to-run sd of a run's own p50, relative
CALL_SPREAD = 0.05  # call-to-call sd within a run (log scale)
AUTOCORRELATION = 0.9  # neighbouring calls share caches, clocks and interrupts


def _sweep_samples(rng: np.random.Generator) -> list[np.ndarray]:
    """One simulated sweep: each run's calls scatter (autocorrelated) around that run's own
    p50, which itself scatters 3% around the true value."""
    runs = []
    for _ in range(RUNS):
        own = TRUE_P50_MS * (1 + RUN_SPREAD * rng.standard_normal())
        noise = lfilter([1.0], [1.0, -AUTOCORRELATION], rng.standard_normal(CALLS))
        noise *= CALL_SPREAD * math.sqrt(1 - AUTOCORRELATION**2)  # stationary sd CALL_SPREAD
        runs.append(own * np.exp(noise - np.median(noise)))  # the run's median is its own p50
    return runs


def test_a_latency_interval_over_runs_covers_the_true_value_at_its_nominal_rate() -> None:
    rng = np.random.default_rng(17)
    covered = 0
    sweeps = 200
    for _ in range(sweeps):
        p50s = [float(np.median(run)) for run in _sweep_samples(rng)]
        got = stats.runs_interval(p50s)
        assert got.n == RUNS and got.low is not None and got.high is not None
        covered += got.low <= TRUE_P50_MS <= got.high
    assert covered / sweeps >= 0.85  # nominal 0.95


def test_pooling_every_runs_calls_into_one_bootstrap_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bug the run-level interval fixes: thousands of autocorrelated calls from five
    runs bootstrapped as if independent say nothing about the run-to-run spread."""
    monkeypatch.setattr(stats, "RESAMPLES", 199)  # enough to show it, cheap enough to test
    rng = np.random.default_rng(17)
    sweeps, covered = 40, 0
    for _ in range(sweeps):
        pooled = np.concatenate(_sweep_samples(rng))
        low, high = stats.median_interval(pooled)
        covered += low <= TRUE_P50_MS <= high
    assert covered / sweeps < 0.5


def test_the_runs_interval_is_students_t_over_the_runs_p50s() -> None:
    p50s = [2.61, 2.55, 2.70]
    got = stats.runs_interval(p50s)
    sd = float(np.std(p50s, ddof=1))
    low, high = t.interval(0.95, 2, loc=np.mean(p50s), scale=sd / math.sqrt(3))
    assert (got.mean, got.low, got.high) == pytest.approx((np.mean(p50s), low, high))


def test_a_latency_interval_never_goes_below_zero_and_says_it_was_clipped() -> None:
    got = stats.runs_interval([0.1, 3.0])  # two runs far apart: t(0.975, 1) is 12.7
    assert got.low == 0.0 and got.clipped
    assert "clipped" in got.note


def test_identical_values_have_no_spread_not_a_zero_width_interval() -> None:
    got = stats.mean_interval([70.2, 70.2, 70.2])
    assert got.n == 3 and got.mean == pytest.approx(70.2)
    assert (got.low, got.high) == (None, None)
    assert got.no_spread and got.note == "no spread observed (n = 3)"


def test_identical_paired_differences_give_no_verdict() -> None:
    # Accuracy moves in steps of 100 / test images: three seeds can all differ by 0.2.
    diff = stats.paired_difference([70.2, 71.0, 69.4], [70.0, 70.8, 69.2])
    assert diff.distinguishable is None and diff.p_value is None
    assert diff.verdict == "no spread observed (n = 3)"


def test_two_pairs_give_an_interval_but_no_verdict() -> None:
    diff = stats.paired_difference([71.0, 75.0], [60.0, 63.5])  # far from zero, only two
    assert diff.interval.low is not None and diff.interval.low > 0
    assert diff.distinguishable is None and diff.p_value is None
    assert diff.verdict == "too few pairs to judge (n = 2; a verdict needs 3)"


def test_the_paired_p_value_is_scipys_paired_t() -> None:
    a, b = [71.0, 70.0, 72.0, 70.5], [70.0, 71.0, 71.5, 71.0]
    assert stats.paired_difference(a, b).p_value == pytest.approx(ttest_rel(a, b).pvalue)


def test_holm_adjusts_across_the_comparisons_and_skips_the_untested() -> None:
    # Holm by hand: sorted 0.01, 0.03, 0.04 times 3, 2, 1, then made monotone.
    adjusted = stats.holm([0.04, None, 0.01, 0.03])
    assert adjusted[1] is None
    assert adjusted[0] == pytest.approx(0.06) and adjusted[2] == pytest.approx(0.03)
    assert adjusted[3] == pytest.approx(0.06)
    assert stats.holm([None, None]) == [None, None]


def test_an_interval_of_a_percentage_is_clipped_to_0_100_and_says_so() -> None:
    got = stats.mean_interval([99.0, 100.0, 98.0], bounds=(0.0, 100.0))
    assert got.high == 100.0 and got.clipped and "clipped to [0, 100]" in got.note
    inside = stats.mean_interval([50.0, 52.0, 51.0], bounds=(0.0, 100.0))
    assert not inside.clipped and inside.note is None


def test_the_wilson_interval_of_a_top1_matches_the_textbook_and_stays_in_bounds() -> None:
    low, high = stats.wilson_interval(81, 100)
    z = 1.959963984540054
    p, n = 0.81, 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert (low, high) == pytest.approx((centre - half, centre + half))
    assert stats.wilson_interval(0, 10)[0] == 0.0
    assert stats.wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_mcnemar_is_the_exact_binomial_test_on_the_discordant_images() -> None:
    # 1 image only the int8 model gets right, 9 only fp32 does: 2 * P(X <= 1 | 10, 1/2).
    assert stats.mcnemar_p(1, 9) == pytest.approx(2 * 11 / 1024)
    assert stats.mcnemar_p(0, 0) == 1.0


def test_the_resamples_are_the_librarys_default() -> None:
    assert stats.RESAMPLES == 9999
