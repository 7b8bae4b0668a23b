"""The shared latency method, driven by a fake clock (harness_contract.study.latency)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from harness_contract.spec import LatencySpec
from harness_contract.study.latency import LatencyRun, measure_latency, summarize

MS = 1_000_000  # ns


class FakeTimer:
    """A clock that only moves when the timed call runs: call i takes duration(i) ns."""

    def __init__(self, duration: Callable[[int], int]) -> None:
        self.now = 0
        self.calls = 0
        self._duration = duration

    def clock(self) -> int:
        return self.now

    def call(self) -> None:
        self.now += self._duration(self.calls)
        self.calls += 1


def _fixed(ns: int) -> Callable[[int], int]:
    return lambda _i: ns


def _scripted(warmup_ns: Sequence[int], measured_ns: Sequence[int]) -> Callable[[int], int]:
    script = [*warmup_ns, *measured_ns]
    return lambda i: script[i]


def _rule(**fields: float) -> LatencySpec:
    base: dict[str, float] = {
        "warmup_count": 0,
        "warmup_seconds": 0.0,
        "min_count": 10,
        "min_seconds": 0.0,
        "max_count": 100_000,
        "max_seconds": 60.0,
    }
    return LatencySpec(**{**base, **fields})


def _measure(timer: FakeTimer, rule: LatencySpec, batch_size: int = 1) -> LatencyRun:
    return measure_latency(
        timer.call, rule, batch_size=batch_size, device="cpu", threads=2, clock=timer.clock
    )


# ---------------------------------------------------------------- stop rule


def test_stops_when_min_count_is_reached_after_min_duration() -> None:
    timer = FakeTimer(_fixed(1 * MS))
    run = _measure(timer, _rule(min_count=10, min_seconds=0.005))
    assert run.stats.stop_reason == "min_count_and_duration"
    assert run.stats.n == 10
    assert timer.calls == 10


def test_keeps_going_past_min_count_until_min_duration() -> None:
    timer = FakeTimer(_fixed(1 * MS))
    run = _measure(timer, _rule(min_count=10, min_seconds=0.05))
    assert run.stats.stop_reason == "min_count_and_duration"
    assert run.stats.n == 50
    assert run.stats.total_s == pytest.approx(0.05)


def test_keeps_going_past_min_duration_until_min_count() -> None:
    timer = FakeTimer(_fixed(10 * MS))
    run = _measure(timer, _rule(min_count=30, min_seconds=0.05))
    assert run.stats.stop_reason == "min_count_and_duration"
    assert run.stats.n == 30


def test_max_count_stops_before_min_duration() -> None:
    timer = FakeTimer(_fixed(1 * MS))
    run = _measure(timer, _rule(min_count=5, min_seconds=100.0, max_count=30, max_seconds=1000.0))
    assert run.stats.stop_reason == "max_count"
    assert run.stats.n == 30
    assert timer.calls == 30


def test_max_seconds_stops_before_min_count() -> None:
    timer = FakeTimer(_fixed(1 * MS))
    run = _measure(timer, _rule(min_count=1000, max_seconds=0.05))
    assert run.stats.stop_reason == "max_seconds"
    assert run.stats.n == 50
    assert run.stats.total_s == pytest.approx(0.05)


def test_a_call_slower_than_max_seconds_is_still_kept() -> None:
    timer = FakeTimer(_fixed(2_000 * MS))
    run = _measure(timer, _rule(min_count=100, max_seconds=1.0))
    assert run.stats.stop_reason == "max_seconds"
    assert run.stats.n == 1
    assert run.samples_ms.tolist() == [2000.0]


# ---------------------------------------------------------------- warm-up


def test_warm_up_calls_by_count_are_not_sampled() -> None:
    # Three slow warm-up calls (7 ms), then 1 ms calls: no 7 ms sample may appear.
    timer = FakeTimer(_scripted([7 * MS] * 3, [1 * MS] * 1000))
    run = _measure(timer, _rule(warmup_count=3, min_count=10))
    assert timer.calls == 3 + 10
    assert run.stats.n == 10
    assert run.samples_ms.tolist() == [1.0] * 10
    assert run.stats.max_ms == 1.0


def test_warm_up_runs_until_both_its_count_and_its_duration_are_reached() -> None:
    by_time = FakeTimer(_fixed(1 * MS))
    _measure(by_time, _rule(warmup_count=3, warmup_seconds=0.005, min_count=10))
    assert by_time.calls == 5 + 10

    by_count = FakeTimer(_fixed(1 * MS))
    _measure(by_count, _rule(warmup_count=8, warmup_seconds=0.005, min_count=10))
    assert by_count.calls == 8 + 10


def test_no_warm_up_when_both_warm_up_settings_are_zero() -> None:
    timer = FakeTimer(_fixed(1 * MS))
    _measure(timer, _rule(min_count=4))
    assert timer.calls == 4


def test_warm_up_never_runs_past_the_measuring_cap() -> None:
    timer = FakeTimer(_fixed(1 * MS))
    run = _measure(timer, _rule(warmup_seconds=10.0, max_seconds=0.05, min_count=5))
    assert timer.calls == 50 + 5
    assert run.stats.n == 5


def test_measuring_time_excludes_warm_up_time() -> None:
    # 20 ms of warm-up must not count towards the 10 ms minimum duration.
    timer = FakeTimer(_fixed(1 * MS))
    run = _measure(timer, _rule(warmup_count=20, min_count=1, min_seconds=0.01))
    assert run.stats.n == 10
    assert run.stats.total_s == pytest.approx(0.01)


# ---------------------------------------------------------------- statistics


def test_statistics_of_a_scripted_run_match_hand_computed_values() -> None:
    # Samples 1..100 ms in a scrambled order.
    order = np.random.default_rng(0).permutation(100) + 1
    timer = FakeTimer(_scripted([], [int(v) * MS for v in order]))
    run = _measure(timer, _rule(min_count=100, max_count=100), batch_size=4)
    stats = run.stats
    assert stats.n == 100
    assert run.samples_ms.shape == (100,)
    np.testing.assert_array_equal(run.samples_ms, order.astype(float))  # kept in call order
    assert stats.mean_ms == pytest.approx(50.5)
    # Sample standard deviation of 1..n is sqrt(n(n+1)/12).
    assert stats.std_ms == pytest.approx(math.sqrt(100 * 101 / 12))
    assert stats.min_ms == 1.0
    assert stats.max_ms == 100.0
    # Linear interpolation between order statistics (numpy's default).
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.total_s == pytest.approx(5.05)
    assert (stats.batch_size, stats.device, stats.threads) == (4, "cpu", 2)
    assert stats.p90_per_sample_ms == pytest.approx(90.1 / 4)


def test_summarize_of_a_few_samples() -> None:
    stats = summarize(np.array([4.0, 1.0, 3.0, 2.0]), 1, "cpu", 1, 0.01, "max_count")
    assert stats.n == 4
    assert stats.mean_ms == pytest.approx(2.5)
    assert stats.std_ms == pytest.approx(math.sqrt(5 / 3))
    assert stats.p50_ms == pytest.approx(2.5)
    assert stats.p90_ms == pytest.approx(3.7)
    assert stats.p99_ms == pytest.approx(3.97)
    assert stats.stop_reason == "max_count"


def test_summarize_of_one_sample_has_zero_spread() -> None:
    stats = summarize(np.array([3.5]), 1, "cpu", 1, 0.0035, "max_seconds")
    assert stats.n == 1
    assert stats.std_ms == 0.0
    assert stats.mean_ms == stats.min_ms == stats.max_ms == 3.5
    assert stats.p50_ms == stats.p90_ms == stats.p99_ms == 3.5


def test_samples_array_has_one_entry_per_timed_call() -> None:
    timer = FakeTimer(_fixed(3 * MS))
    run = _measure(timer, _rule(warmup_count=4, min_count=17))
    assert run.samples_ms.shape == (run.stats.n,) == (17,)
    assert run.samples_ms.dtype == np.float64
    assert np.all(run.samples_ms == 3.0)


def test_a_rule_whose_time_cap_is_below_its_minimum_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="max_seconds must be >= min_seconds"):
        _rule(min_seconds=5.0, max_seconds=1.0)
