"""The shared study pipeline, driven by a numpy framework: phases, failures, interrupts."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest

from harness_contract.data.cifar import load_cifar10, write_synthetic
from harness_contract.metrics import read_metrics
from harness_contract.spec import build_spec
from harness_contract.study.framework import ProfilerUnavailable
from harness_contract.study.pipeline import Study

from .numpy_framework import Linear, NumpyFramework

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
    "measure.latency.thread_sweep=true",  # the smoke preset leaves the 1-thread rows out
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


# ---------------------------------------------------------------- profiling passes


def test_every_phase_gets_profiled_apart_from_its_timed_figures(data, tmp_path: Path) -> None:
    metrics = run_study(NumpyFramework(), data, tmp_path, ["measure.profile.active=2"])
    passes = {(name, p.kind): p for name, v in metrics.variants.items() for p in v.profiles}
    assert set(passes) == {
        ("baseline", "train"),
        ("baseline", "inference"),
        ("ptq", "inference"),
        ("qat", "train"),
        ("qat", "inference"),
    }
    for p in passes.values():
        assert p.status == "ok" and p.steps == 2 and p.viewer == "perfetto"
        trace = tmp_path / p.trace
        assert trace.is_file() and p.trace_bytes == trace.stat().st_size
        assert abs(sum(row.share for row in p.breakdown) - 1) < 1e-9
    train = passes[("baseline", "train")]
    assert train.batch_size == 50
    # The stream's hand-over of batches is timed by the pipeline as data loading.
    assert "data" in {row.category for row in train.breakdown}
    # Only the active steps are traced: one avg_pool and one matmul per training step.
    names = [e["name"] for e in json.loads((tmp_path / train.trace).read_text())["traceEvents"]]
    assert names.count("matmul") == 2
    inference = passes[("ptq", "inference")]
    assert inference.batch_size == 32
    categories = {row.category for row in inference.breakdown}
    assert categories == {"quantize", "matmul"}  # features are prepared before timing
    assert {"quantize"}.isdisjoint(r.category for r in passes[("baseline", "inference")].breakdown)


def test_profiling_never_changes_the_studied_models(data, tmp_path: Path) -> None:
    on = run_study(NumpyFramework(), data, tmp_path / "on")
    off = run_study(NumpyFramework(), data, tmp_path / "off", ["measure.profile.enabled=false"])
    for name in ("baseline", "ptq", "qat"):
        assert on.variants[name].accuracy == off.variants[name].accuracy
        assert off.variants[name].profiles == []
    assert not (tmp_path / "off" / "traces").exists()


class BrokenProfiler(NumpyFramework):
    def profile(self, model, work, schedule, trace_dir, name):
        raise RuntimeError("CUPTI_ERROR_INSUFFICIENT_PRIVILEGES\nmore")


def test_a_failing_profiler_is_recorded_and_costs_nothing_else(data, tmp_path: Path) -> None:
    metrics = run_study(BrokenProfiler(), data, tmp_path)
    assert metrics.status == "complete"
    for v in metrics.variants.values():
        assert v.status == "ok" and v.profiles
        assert {p.status for p in v.profiles} == {"failed"}
        assert v.profiles[0].reason == "RuntimeError: CUPTI_ERROR_INSUFFICIENT_PRIVILEGES"


class NoInt8Profiler(NumpyFramework):
    def profile(self, model, work, schedule, trace_dir, name):
        if not isinstance(model, Linear):
            raise ProfilerUnavailable("the int8 runtime exposes no per-op profiler")
        return super().profile(model, work, schedule, trace_dir, name)


def test_an_unavailable_profiler_says_why(data, tmp_path: Path) -> None:
    metrics = run_study(NoInt8Profiler(), data, tmp_path)
    ptq = metrics.variants["ptq"].profile("inference")
    assert ptq.status == "unavailable" and ptq.trace is None
    assert ptq.reason == "the int8 runtime exposes no per-op profiler"
    assert metrics.variants["baseline"].profile("inference").status == "ok"


# ---------------------------------------------------------------- thread sweep


def test_without_thread_control_the_one_thread_rows_are_missing_with_a_note(
    data, tmp_path: Path
) -> None:
    spec = build_spec("smoke", None, FAST)
    metrics = Study(NumpyFramework(), spec, data, tmp_path, "r", "local").run(threads=2)
    base = metrics.variants["baseline"]
    assert [(lat.batch_size, lat.threads) for lat in base.latency] == [(1, 2), (16, 2)]
    assert any(n.startswith("no latency at 1 thread(s):") for n in base.notes)


class Threaded(NumpyFramework):
    def __init__(self) -> None:
        self.threads_seen: list[int] = []

    @contextlib.contextmanager
    def threads_for(self, model, threads):
        self.threads_seen.append(threads)
        yield


def test_one_thread_rows_follow_the_runs_own_rows(data, tmp_path: Path) -> None:
    fw = Threaded()
    spec = build_spec("smoke", None, FAST)
    metrics = Study(fw, spec, data, tmp_path, "r", "local").run(threads=2)
    base = metrics.variants["baseline"]
    assert [(lat.batch_size, lat.threads) for lat in base.latency] == [
        (1, 2),
        (16, 2),
        (1, 1),
        (16, 1),
    ]
    assert base.latency_at(1).threads == 2 and base.latency_at(1, threads=1).threads == 1
    assert fw.threads_seen == [1, 1, 1]  # once per variant, around both batch sizes
    files = {lat.samples_file for lat in base.latency}
    assert "artifacts/latency-baseline-b1-t1.npy" in files and len(files) == 4


def test_a_single_threaded_run_has_no_sweep(data, tmp_path: Path) -> None:
    fw = Threaded()
    metrics = run_study(fw, data, tmp_path)
    assert {lat.threads for lat in metrics.variants["qat"].latency} == {1}
    assert fw.threads_seen == []


def test_memory_is_split_into_training_and_inference_peaks(data, tmp_path: Path) -> None:
    metrics = run_study(NumpyFramework(), data, tmp_path)
    base, ptq, qat = (metrics.variants[k].memory for k in ("baseline", "ptq", "qat"))
    for mem in (base, qat):
        assert 0 < mem.training_peak_rss_bytes <= mem.peak_rss_bytes
    for mem in (base, ptq, qat):
        assert 0 < mem.inference_peak_rss_bytes <= mem.peak_rss_bytes
        # No GPU here: every GPU figure stays empty rather than zero.
        assert mem.peak_gpu_bytes is mem.training_peak_gpu_bytes is None
        assert mem.inference_peak_gpu_bytes is None
    assert ptq.training_peak_rss_bytes is None  # PTQ does not train


class FakeGPUCounter(NumpyFramework):
    """A GPU allocator counter driven by the work itself: training "allocates" 300 units,
    inference 100, so each part's peak is known."""

    def setup(self, spec, threads):
        self.peak = self.current = 0
        return super().setup(spec, threads)

    def _use(self, amount: int) -> None:
        self.peak = max(self.peak, self.current + amount)

    def trainer(self, model, optim):
        inner = super().trainer(model, optim)
        outer = self

        class Counting(type(inner)):
            def step(self, images, labels, lr):
                outer._use(300)
                return super().step(images, labels, lr)

        inner.__class__ = Counting
        return inner

    def predict(self, model, images):
        self._use(100)
        return super().predict(model, images)

    def reset_peak_gpu(self) -> None:
        self.peak = self.current

    def peak_gpu_bytes(self) -> int | None:
        return self.peak


def test_gpu_peaks_are_kept_per_part_and_the_phase_keeps_the_largest(data, tmp_path: Path) -> None:
    metrics = run_study(FakeGPUCounter(), data, tmp_path, ["measure.profile.enabled=false"])
    base = metrics.variants["baseline"].memory
    assert base.training_peak_gpu_bytes == 300
    assert base.inference_peak_gpu_bytes == 100
    assert base.peak_gpu_bytes == 300  # resets between parts do not lose the phase's peak
    ptq = metrics.variants["ptq"].memory
    assert ptq.peak_gpu_bytes == ptq.inference_peak_gpu_bytes == 100
