"""The shared study pipeline, driven by a numpy framework: phases, failures, interrupts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness_contract.cifar import load_cifar10, write_synthetic
from harness_contract.metrics import read_metrics
from harness_contract.pipeline import Study
from harness_contract.spec import build_spec

from .numpy_framework import NumpyFramework

FAST = [
    "train.epochs=3",
    "train.batch_size=50",
    "train.lr=0.5",
    "train.warmup_epochs=0",
    "qat.epochs=1",
    "qat.batch_size=50",
    "qat.lr=0.05",
    "ptq.calibration_samples=64",
    "measure.latency.batch_sizes=[1,16]",
    "measure.latency.min_count=5",
    "measure.latency.min_seconds=0",
    "measure.latency.warmup_count=1",
    "measure.latency.warmup_seconds=0",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    root = write_synthetic(tmp_path_factory.mktemp("synth"), train_per_batch=200, test_count=200)
    return load_cifar10(root)


def run_study(fw, data, out: Path, extra: list[str] | None = None):
    spec = build_spec("smoke", None, FAST + (extra or []))
    return Study(fw, spec, data, out, "test-run", "local (test)").run(threads=1)


def test_numpy_study_completes_with_three_measured_variants(data, tmp_path: Path) -> None:
    metrics = run_study(NumpyFramework(), data, tmp_path)
    assert metrics.status == "complete"
    assert [v.status for v in metrics.variants.values()] == ["ok", "ok", "ok"]
    base, ptq, qat = (metrics.variants[k] for k in ("baseline", "ptq", "qat"))
    assert base.accuracy.top1 > 0.5  # the synthetic classes are linearly separable enough
    assert abs(ptq.accuracy.top1 - base.accuracy.top1) < 0.05
    assert ptq.accuracy.agreement_with_fp32 > 0.9
    assert base.training.epochs == 3 and len(base.training.loss) == 3
    assert base.training.loss[-1] < base.training.loss[0]
    assert ptq.conversion.calibration_samples == 64
    assert qat.training.epochs == 1 and qat.conversion.calibration_s is None
    assert [lat.batch_size for lat in base.latency] == [1, 16]
    samples = np.load(tmp_path / base.latency[0].samples_file)
    assert samples.size == base.latency[0].n >= 5
    assert base.memory.peak_rss_bytes > 0
    on_disk = read_metrics(tmp_path / "metrics.json")
    assert on_disk.status == "complete" and on_disk.variants["qat"].status == "ok"
    assert on_disk.dataset.kind == "synthetic" and on_disk.provenance.threads == 1


class FailingPTQ(NumpyFramework):
    def quantize_ptq(self, model, calibration):
        raise RuntimeError("converter exploded\nsecond line of detail")


def test_a_failing_phase_is_recorded_and_the_study_goes_on(data, tmp_path: Path) -> None:
    metrics = run_study(FailingPTQ(), data, tmp_path)
    assert metrics.status == "complete"
    ptq = metrics.variants["ptq"]
    assert ptq.status == "failed"
    assert ptq.reason == "RuntimeError: converter exploded"  # one line
    assert metrics.variants["baseline"].status == "ok"
    assert metrics.variants["qat"].status == "ok"


class FailingBaseline(NumpyFramework):
    def trainer(self, model, optim):
        raise ValueError("no trainer today")


def test_without_a_baseline_the_quantized_phases_are_skipped_with_the_reason(
    data, tmp_path: Path
) -> None:
    metrics = run_study(FailingBaseline(), data, tmp_path)
    assert metrics.variants["baseline"].status == "failed"
    for name in ("ptq", "qat"):
        assert metrics.variants[name].status == "skipped"
        assert "baseline phase failed" in metrics.variants[name].reason


def test_disabled_phases_are_skipped_not_missing(data, tmp_path: Path) -> None:
    metrics = run_study(
        NumpyFramework(), data, tmp_path, ["ptq.enabled=false", "qat.enabled=false"]
    )
    assert metrics.variants["ptq"].status == "skipped"
    assert "ptq.enabled" in metrics.variants["ptq"].reason
    assert metrics.variants["qat"].status == "skipped"


class InterruptedQAT(NumpyFramework):
    def prepare_qat(self, model):
        raise KeyboardInterrupt


def test_an_interrupt_keeps_finished_phases_and_marks_the_run(data, tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_study(InterruptedQAT(), data, tmp_path)
    saved = read_metrics(tmp_path / "metrics.json")
    assert saved.status == "interrupted"
    assert saved.variants["baseline"].status == "ok"
    assert saved.variants["ptq"].status == "ok"
    assert "qat" not in saved.variants


class Diverging(NumpyFramework):
    def trainer(self, model, optim):
        inner = super().trainer(model, optim)

        class NaNLoss(type(inner)):
            def end_epoch(self) -> tuple[float, float]:
                super().end_epoch()
                return float("nan"), 0.0

        inner.__class__ = NaNLoss
        return inner


def test_diverging_training_fails_the_phase_with_advice(data, tmp_path: Path) -> None:
    metrics = run_study(Diverging(), data, tmp_path)
    reason = metrics.variants["baseline"].reason
    assert "diverged" in reason and "learning rate" in reason


def test_shared_initial_weights_are_recorded_by_digest(data, tmp_path: Path) -> None:
    first = run_study(NumpyFramework(), data, tmp_path / "a")
    second = run_study(NumpyFramework(), data, tmp_path / "b")
    assert first.initial_weights.startswith("shared:")
    assert first.initial_weights == second.initial_weights  # same seed, same start
    other_seed = run_study(NumpyFramework(), data, tmp_path / "c", ["seed=1"])
    assert other_seed.initial_weights != first.initial_weights


def test_framework_default_initialisation_is_recorded_as_such(data, tmp_path: Path) -> None:
    metrics = run_study(NumpyFramework(), data, tmp_path, ["model.init=framework"])
    assert metrics.initial_weights == "framework-default"
    assert metrics.variants["baseline"].status == "ok"
