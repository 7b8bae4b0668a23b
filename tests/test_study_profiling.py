"""The profiling unit on its own: which passes a phase gets, and what each records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness_contract.layout import FrameworkDir
from harness_contract.study.framework import ProfilerUnavailable
from harness_contract.study.profiling import Profiling

from .numpy_framework import NumpyFramework
from .study_units import tiny_data, tiny_spec


def _profiling(fw: NumpyFramework, out: Path, *extra: str) -> Profiling:
    spec = tiny_spec("measure.profile.active=2", *extra)
    fw.setup(spec, 1)
    return Profiling(fw, spec, tiny_data(), FrameworkDir(out), "cpu", 1)


@pytest.mark.parametrize(
    ("phase", "extra", "kinds"),
    [
        ("baseline", [], ["train", "inference"]),
        ("ptq", [], ["inference"]),
        ("qat", [], ["train", "inference"]),
        ("qat", ["qat.epochs=0"], ["inference"]),  # nothing was trained: nothing to profile
        ("baseline", ["measure.profile.train=false"], ["inference"]),
        ("baseline", ["measure.profile.enabled=false"], []),
    ],
)
def test_each_phase_gets_the_passes_the_spec_asks_for(
    phase: str, extra: list[str], kinds: list[str], tmp_path: Path
) -> None:
    fw = NumpyFramework()
    p = _profiling(fw, tmp_path, *extra)
    model = fw.build(None)
    assert [x.kind for x in p.passes(phase, model, model)] == kinds


def test_a_pass_records_its_trace_and_breakdown_and_leaves_the_model_alone(
    tmp_path: Path,
) -> None:
    fw = NumpyFramework()
    p = _profiling(fw, tmp_path)
    fp32 = fw.build(None)
    fp32.w += 1.0
    before = fp32.w.copy()
    stats = list(p.run("qat", fp32, fp32))
    assert [(s.kind, s.status, s.steps) for s in stats] == [
        ("train", "ok", 2),
        ("inference", "ok", 2),
    ]
    train = stats[0]
    assert train.trace == "traces/qat-train.trace.json" and (tmp_path / train.trace).is_file()
    assert "data" in {row.category for row in train.breakdown}  # the stream's hand-over
    assert np.array_equal(fp32.w, before)  # training steps ran on a fresh copy


class NoProfiler(NumpyFramework):
    def profile(self, model, work, schedule, trace_dir, name):
        raise ProfilerUnavailable("no profiler in this runtime")


class Crashing(NumpyFramework):
    def profile(self, model, work, schedule, trace_dir, name):
        raise RuntimeError("profiler crashed\ndetails")


@pytest.mark.parametrize(
    ("fw", "status", "reason"),
    [
        (NoProfiler(), "unavailable", "no profiler in this runtime"),
        (Crashing(), "failed", "RuntimeError: profiler crashed"),
    ],
)
def test_a_pass_that_cannot_run_says_why(fw, status: str, reason: str, tmp_path: Path) -> None:
    p = _profiling(fw, tmp_path)
    model = fw.build(None)
    [stats] = list(p.run("ptq", model, model))
    assert (stats.status, stats.reason, stats.trace, stats.device) == (status, reason, None, "cpu")


def test_an_unwritable_traces_folder_fails_the_pass_not_the_study(tmp_path: Path) -> None:
    (tmp_path / "traces").write_text("a file where the folder should be")
    fw = NumpyFramework()
    p = _profiling(fw, tmp_path)
    model = fw.build(None)
    [stats] = list(p.run("ptq", model, model))
    assert stats.status == "failed" and stats.reason.startswith("FileExistsError")
