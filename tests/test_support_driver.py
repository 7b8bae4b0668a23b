"""The support driver (harness_contract.study.support): every probe answered with an allowed
outcome, whatever the probes module does — raise, hang past its bound, kill its process,
answer nonsense, print to stdout, or keep its process from exiting."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from harness_contract.layout import FrameworkDir
from harness_contract.metrics import ProbeResult, SupportMatrix
from harness_contract.spec.frameworks import SupportSpec
from harness_contract.study.support import PROBES, probe_support
from tests.numpy_framework import NumpyFramework

BOUND_S = 1.0
ALLOWED = {"yes", "no", "not probed", "timed out"}


class ProbedNumpy(NumpyFramework):
    probes_module = "tests.probe_fixtures"


def _probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str) -> SupportMatrix:
    monkeypatch.setenv("PROBE_FIXTURE", scenario)  # the child inherits the environment
    monkeypatch.chdir(Path(__file__).parents[1])  # so the child can import tests.*
    matrix = probe_support(ProbedNumpy(), SupportSpec(timeout_s=BOUND_S), FrameworkDir(tmp_path))
    assert matrix is not None
    return matrix


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[SupportMatrix, Path, float]:
    """The mixed scenario, probed once for every test that reads it (and how long it took)."""
    out = tmp_path_factory.mktemp("mixed")
    with pytest.MonkeyPatch.context() as mp:
        started = time.monotonic()
        matrix = _probe(out, mp, "mixed")
        return matrix, out, time.monotonic() - started


def _by_slug(matrix: SupportMatrix) -> dict[str, ProbeResult]:
    return {p.probe: p for p in matrix.probes}


def test_every_probe_is_answered_in_order_with_an_allowed_outcome(mixed):
    matrix = mixed[0]
    assert [p.probe for p in matrix.probes] == [p.slug for p in PROBES]
    assert {p.outcome for p in matrix.probes} <= ALLOWED
    assert matrix.versions == ProbedNumpy().versions()
    assert matrix.timeout_s == BOUND_S
    questions = {p.slug: (p.area, p.question) for p in PROBES}
    assert all((r.area, r.question) == questions[r.probe] for r in matrix.probes)


def test_a_yes_keeps_its_detail(mixed):
    got = _by_slug(mixed[0])
    assert (got["int8_gpu"].outcome, got["int8_gpu"].detail) == ("yes", "worked slowly")
    assert (got["custom_layer"].outcome, got["custom_layer"].detail) == ("yes", "worked")


def test_a_hung_probe_is_stopped_at_its_bound_and_the_next_ones_still_answer(mixed):
    got = _by_slug(mixed[0])
    hung = got["int8_native"]
    assert hung.outcome == "timed out"
    assert "1 s" in (hung.detail or "") and "support.timeout_s" in (hung.detail or "")
    assert BOUND_S <= (hung.seconds or 0) < BOUND_S + 2
    assert got["profiler_training"].outcome == "yes"  # answered by a fresh child
    assert mixed[2] < 15  # not the 30 s the probe sleeps


def test_a_probe_that_kills_its_process_is_a_no_and_the_next_ones_still_answer(mixed):
    got = _by_slug(mixed[0])
    died = got["profiler_int8"]
    assert died.outcome == "no"
    assert "died (exit 3)" in (died.detail or "")
    assert got["auto_fusion"].outcome == "yes"


def test_an_unknown_outcome_is_a_no_that_quotes_it(mixed):
    got = _by_slug(mixed[0])["auto_setup"]
    assert got.outcome == "no"
    assert "unknown outcome 'maybe'" in (got.detail or "")


def test_not_probed_answers_and_missing_probes_say_why(mixed):
    got = _by_slug(mixed[0])
    assert (got["qat_convert"].outcome, got["qat_convert"].detail) == ("not probed", "no GPU here")
    for slug in ("embedding", "per_layer_access", "int8_export"):
        assert got[slug].outcome == "not probed"
        assert "tests.probe_fixtures has no probe for this" in (got[slug].detail or "")


def test_the_probe_log_keeps_the_traceback_of_a_probe_that_raised(mixed):
    log = (mixed[1] / "probes.log").read_text()
    assert "RuntimeError: no int8 kernel for this device" in log


def test_a_probe_that_raises_is_a_no_with_its_error(mixed):
    got = _by_slug(mixed[0])["int8_cpu"]
    assert got.outcome == "no"
    assert got.detail == "RuntimeError: no int8 kernel for this device"


def test_a_framework_without_probes_is_not_probed(tmp_path):
    assert probe_support(NumpyFramework(), SupportSpec(), FrameworkDir(tmp_path)) is None


# ------------------------------------------------------------------ hostile children
# Answers travel on a pipe of their own, read into the driver's own buffer: a probe's
# printing, a partial line, a leftover thread or a broken import cannot hide an answer.


def test_a_probe_that_prints_to_stdout_is_answered_before_a_hung_one(tmp_path, monkeypatch):
    got = _by_slug(_probe(tmp_path, monkeypatch, "noisy"))
    assert (got["int8_cpu"].outcome, got["int8_cpu"].detail) == ("yes", "answered after printing")
    assert got["int8_gpu"].outcome == "timed out"
    assert got["int8_native"].outcome == "yes"


def test_an_answer_after_a_partial_line_on_stdout_is_read(tmp_path, monkeypatch):
    got = _by_slug(_probe(tmp_path, monkeypatch, "no_newline"))
    assert got["int8_cpu"].outcome == "yes"
    assert got["int8_gpu"].outcome == "yes"


def test_a_child_that_cannot_exit_after_its_last_answer_does_not_hang_the_study(
    tmp_path, monkeypatch
):
    done: list[SupportMatrix] = []
    # A thread, so this test fails at its own bound instead of hanging the suite.
    worker = threading.Thread(
        target=lambda: done.append(_probe(tmp_path, monkeypatch, "stays_alive")), daemon=True
    )
    worker.start()
    worker.join(timeout=10)
    assert done, "probe_support did not return within 10 s of the last probe's answer"
    got = _by_slug(done[0])
    assert (got["int8_gpu"].outcome, got["int8_gpu"].detail) == ("yes", "left a thread running")
    assert "timed out" not in {p.outcome for p in done[0].probes}  # all answered at once


def test_a_probes_module_that_cannot_be_imported_answers_no_with_its_error(tmp_path, monkeypatch):
    got = _probe(tmp_path, monkeypatch, "broken").probes
    assert [p.outcome for p in got] == ["no"] * len(PROBES)
    assert all("ImportError: No module named 'torchao'" in (p.detail or "") for p in got)
