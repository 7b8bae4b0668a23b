"""Progress events on stdout and peak-RSS sampling (harness_contract.events, .memory)."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from harness_contract import events
from harness_contract.study.memory import PeakRSS, current_rss_bytes, max_rss_bytes

MB = 1024 * 1024


# ---------------------------------------------------------------- events


def test_emit_writes_one_marked_json_line_that_parse_reads_back() -> None:
    out = io.StringIO()
    events.emit("epoch", out, epoch=2, loss=0.75, variant="baseline", lrs=[0.1, 0.01])
    text = out.getvalue()
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert text.startswith(events.MARKER)
    assert events.parse(text) == {
        "event": "epoch",
        "epoch": 2,
        "loss": 0.75,
        "variant": "baseline",
        "lrs": [0.1, 0.01],
    }
    assert events.parse(text.rstrip("\n")) == events.parse(text)


def test_emit_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    events.emit("started", framework="pytorch")
    line = capsys.readouterr().out
    assert events.parse(line) == {"event": "started", "framework": "pytorch"}


def test_each_emit_is_its_own_line() -> None:
    out = io.StringIO()
    events.emit("a", out, message="two\nlines")
    events.emit("b", out)
    lines = out.getvalue().splitlines()
    assert [events.parse(line)["event"] for line in lines] == ["a", "b"]
    assert events.parse(lines[0])["message"] == "two\nlines"


@pytest.mark.parametrize(
    "line",
    [
        "",
        "Epoch 1/3 loss 0.5\n",
        '{"event": "epoch"}\n',  # JSON, but not marked
        " " + events.MARKER + '{"event": "epoch"}',  # marker not at the start
    ],
)
def test_parse_ignores_ordinary_output(line: str) -> None:
    assert events.parse(line) is None


@pytest.mark.parametrize(
    "payload",
    [
        '{"event": "epoch", ',  # truncated
        "not json at all",
        "",
        '["event", "epoch"]',  # JSON, not an object
        '"epoch"',
        '{"kind": "epoch"}',  # an object without "event"
    ],
)
def test_parse_returns_none_for_malformed_marked_lines(payload: str) -> None:
    assert events.parse(events.MARKER + payload + "\n") is None


# ---------------------------------------------------------------- memory


def test_current_and_max_rss_are_plausible() -> None:
    current, peak = current_rss_bytes(), max_rss_bytes()
    assert current > 1 * MB
    assert current <= peak * 1.05  # the process's lifetime peak bounds today's RSS


def test_peak_rss_sees_a_short_lived_50mb_allocation() -> None:
    before = current_rss_bytes()
    with PeakRSS(interval_s=0.005) as monitor:
        block = np.ones(50 * MB, dtype=np.uint8)  # np.ones touches every page
        rss_inside = current_rss_bytes()
        time.sleep(0.05)  # several sampling intervals
        del block  # freed before the block ends: only the sampler can have seen it
    assert rss_inside >= before + 40 * MB
    assert monitor.peak_bytes >= rss_inside - 1 * MB
    assert monitor.peak_bytes >= before + 40 * MB


def test_peak_rss_without_allocation_stays_near_the_starting_rss() -> None:
    start = current_rss_bytes()
    with PeakRSS(interval_s=0.005) as monitor:
        time.sleep(0.02)
    assert start - 1 * MB <= monitor.peak_bytes < start + 20 * MB


def test_peak_rss_is_recorded_even_when_the_block_raises() -> None:
    monitor = PeakRSS(interval_s=0.005)
    with pytest.raises(RuntimeError), monitor:
        raise RuntimeError("training diverged")
    assert monitor.peak_bytes > 1 * MB
    assert not monitor._thread.is_alive()
