"""The phase driver on its own: order, saves after every phase, skips, the file's end state."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness_contract import events
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import read_metrics
from harness_contract.study.driver import StudyDriver

from .numpy_framework import NumpyFramework
from .study_units import tiny_data, tiny_spec


class Watching(NumpyFramework):
    """Reads metrics.json from disk when PTQ and QAT first start."""

    def __init__(self, out: FrameworkDir) -> None:
        self.out, self.seen = out, {}

    def quantize_ptq(self, model, calibration):
        self.seen.setdefault("ptq", read_metrics(self.out.metrics))
        return super().quantize_ptq(model, calibration)

    def prepare_qat(self, model):
        self.seen.setdefault("qat", read_metrics(self.out.metrics))  # not the profiling copy
        return super().prepare_qat(model)


def test_phases_run_in_order_and_each_is_saved_before_the_next_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = FrameworkDir(tmp_path / "numpy")
    fw = Watching(out)
    driver = StudyDriver(fw, tiny_spec(), tiny_data(), out, "run-1", "local (test)")
    metrics = driver.run(threads=1)
    assert fw.seen["ptq"].status == "running" and list(fw.seen["ptq"].variants) == ["baseline"]
    assert list(fw.seen["qat"].variants) == ["baseline", "ptq"]
    assert fw.seen["qat"].variants["baseline"].profiles  # profiled before PTQ began
    assert metrics.status == "complete" and read_metrics(out.metrics).status == "complete"
    assert out.artifacts.is_dir() and (out.artifacts / "qat.npz").is_file()
    phases = [
        (e["phase"], e["state"])
        for e in map(events.parse, capsys.readouterr().out.splitlines())
        if e and e["event"] == "phase"
    ]
    assert phases == [(p, s) for p in ("baseline", "ptq", "qat") for s in ("start", "done")]


def test_a_disabled_phase_is_skipped_and_the_rest_still_runs(tmp_path: Path) -> None:
    out = FrameworkDir(tmp_path)
    spec = tiny_spec("ptq.enabled=false", "measure.profile.enabled=false")
    metrics = StudyDriver(NumpyFramework(), spec, tiny_data(), out, "r", "t").run(threads=1)
    assert {k: v.status for k, v in metrics.variants.items()} == {
        "baseline": "ok",
        "ptq": "skipped",
        "qat": "ok",
    }
    assert metrics.variants["ptq"].reason == "disabled in the spec (ptq.enabled = false)"


class InterruptedProfile(NumpyFramework):
    def profile(self, model, work, schedule, trace_dir, name):
        raise KeyboardInterrupt


def test_ctrl_c_between_phases_ends_the_file_interrupted(tmp_path: Path) -> None:
    out = FrameworkDir(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        StudyDriver(InterruptedProfile(), tiny_spec(), tiny_data(), out, "r", "t").run(threads=1)
    saved = read_metrics(out.metrics)
    assert saved.status == "interrupted" and saved.error == "interrupted before the study finished"
    assert saved.variants["baseline"].status == "ok" and saved.initial_weights.startswith("shared:")
