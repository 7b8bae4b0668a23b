"""harness.results.stats against known values: scipy's t quantiles, a textbook paired t interval
(Student's sleep data) and the large-sample spread of a median."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t

from harness.results.stats import (
    DISTINGUISHABLE,
    mean_interval,
    median_interval,
    paired_difference,
)

# Cushny & Peebles' sleep data as Student (1908) used it: extra hours of sleep for ten
# patients under two drugs. R's t.test(extra ~ group, paired = TRUE) gives the interval
# of group1 - group2 as [-2.4598858, -0.7001142], mean -1.58, t = -4.0621.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_the_mean_interval_uses_the_t_quantile_with_n_minus_1_degrees_of_freedom() -> None:
    values = [71.2, 70.4, 72.9]
    got = mean_interval(values)
    sd = float(np.std(values, ddof=1))
    half = 4.302653 * sd / math.sqrt(3)  # t(0.975, 2) from any table
    assert got.n == 3 and got.mean == pytest.approx(np.mean(values))
    assert got.sd == pytest.approx(sd)
    assert (got.low, got.high) == pytest.approx((got.mean - half, got.mean + half), rel=1e-6)
    low, high = t.interval(0.95, 2, loc=np.mean(values), scale=sd / math.sqrt(3))
    assert (got.low, got.high) == pytest.approx((low, high))


def test_the_confidence_level_is_honoured() -> None:
    values = [1.0, 2.0, 4.0, 8.0]
    narrow, wide = mean_interval(values, 0.8), mean_interval(values, 0.99)
    sem = np.std(values, ddof=1) / 2
    assert narrow.half_width == pytest.approx(t.ppf(0.9, 3) * sem)
    assert wide.half_width == pytest.approx(t.ppf(0.995, 3) * sem)


def test_one_value_has_a_mean_but_no_spread_or_interval() -> None:
    got = mean_interval([0.5])
    assert (got.n, got.mean, got.sd, got.low, got.high) == (1, 0.5, None, None, None)


def test_the_paired_interval_matches_students_sleep_data() -> None:
    diff = paired_difference(SLEEP_1, SLEEP_2)
    assert diff.n == 10
    assert diff.interval.mean == pytest.approx(-1.58)
    assert (diff.interval.low, diff.interval.high) == pytest.approx(
        (-2.4598858, -0.7001142), abs=1e-6
    )
    assert diff.interval.mean / (diff.interval.sd / math.sqrt(10)) == pytest.approx(
        -4.0621, abs=1e-4
    )
    assert diff.distinguishable is True and diff.verdict == DISTINGUISHABLE


def test_a_difference_inside_the_noise_is_called_so_with_its_seed_count() -> None:
    diff = paired_difference([71.0, 70.0, 72.0, 70.5], [70.0, 71.0, 71.5, 71.0])
    assert diff.distinguishable is False
    assert diff.verdict == "not distinguishable from zero at 4 seeds"


def test_pairing_removes_the_spread_both_sides_share() -> None:
    # Seeds move both sides by a lot; the pair differs by exactly +1 each time, plus a little.
    shared = np.array([60.0, 75.0, 68.0, 80.0])
    a, b = shared + 1 + np.array([0.1, -0.1, 0.05, -0.05]), shared
    assert paired_difference(a, b).distinguishable is True
    unpaired_half = t.ppf(0.975, 3) * np.std(a, ddof=1) / 2
    assert unpaired_half > 5  # the unpaired interval of a alone would swallow the +1


def test_one_pair_is_too_few_to_judge() -> None:
    diff = paired_difference([1.0], [0.0])
    assert diff.distinguishable is None
    assert diff.verdict == "too few pairs to judge (n = 1; a verdict needs 3)"


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="not finite"):
        mean_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="at least one"):
        mean_interval([])


def test_the_median_interval_covers_the_median_with_the_textbook_width() -> None:
    rng = np.random.default_rng(1)
    samples = rng.normal(10.0, 1.0, 4000)
    low, high = median_interval(samples)
    assert low < np.median(samples) < high
    assert low < 10.0 < high
    # The median's standard error for a normal sample: sqrt(pi/2) * sigma / sqrt(n).
    expected = 2 * 1.959964 * math.sqrt(math.pi / 2) / math.sqrt(4000)
    assert high - low == pytest.approx(expected, rel=0.25)


def test_the_median_interval_is_repeatable_and_needs_two_samples() -> None:
    samples = np.random.default_rng(2).lognormal(0, 0.2, 500)
    assert median_interval(samples, seed=0) == median_interval(samples, seed=0)
    assert median_interval([1.0]) is None
    narrow = median_interval(samples, confidence=0.5)
    wide = median_interval(samples, confidence=0.99)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]
