"""Failures inside and outside the study's phases: each is recorded with its root cause, the
study goes on where it can, and metrics.json never stays "running"."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from harness_contract.data.cifar import Cifar10, load_cifar10, write_synthetic
from harness_contract.failures import reason_of, root_cause
from harness_contract.metrics import COMPLETE_WITH_FAILURES, read_metrics
from harness_contract.spec import PTQSpec, build_spec
from harness_contract.study.framework import ProfileCapture, Unsupported
from harness_contract.study.phases import CalibrationError, calibration_batches
from harness_contract.study.pipeline import Study

from .numpy_framework import NumpyFramework
from .test_pipeline import FAST

# What TensorFlow 2.21 puts in a StagingError raised from a tf.function's Python body: the
# traced frames, then the error raised inside (here a Keras input-shape check).
STAGING_MESSAGE = """in user code:

    File "/work/main/images/tensorflow/tf_runner/train.py", line 52, in _train_step  *
        self._update(images, labels, lr)
    File "/work/main/images/tensorflow/tf_runner/train.py", line 57, in _update  *
        logits = self.model(x, training=True)
    File "/opt/venv/lib/python3.12/site-packages/tf_keras/src/utils/traceback_utils.py", \
line 70, in error_handler  **
        raise e.with_traceback(filtered_tb) from None
    File "/opt/venv/lib/python3.12/site-packages/tf_keras/src/engine/input_spec.py", \
line 298, in assert_input_compatibility
        raise ValueError(

    ValueError: Input 0 of layer "cifar_resnet18" is incompatible with the layer: \
expected shape=(None, 32, 32, 3), found shape=(None, 28, 28, 3)
"""

OOM_INSIDE = """in user code:

    File "/work/main/images/tensorflow/tf_runner/train.py", line 52, in _train_step  *
        self._update(images, labels, lr)

    tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating \
tensor with shape[512,64,32,32] and type float on /job:localhost/replica:0/task:0/device:GPU:0
    \t [[{{node conv2d/Conv2D}}]]
"""


class StagingError(Exception):
    """Named as TensorFlow's autograph wrapper is; the test needs no TensorFlow."""


# ---------------------------------------------------------------- root cause, pure


def test_a_staging_error_records_the_error_raised_inside_it() -> None:
    assert root_cause("StagingError", STAGING_MESSAGE) == (
        "ValueError",
        'Input 0 of layer "cifar_resnet18" is incompatible with the layer: '
        "expected shape=(None, 32, 32, 3), found shape=(None, 28, 28, 3)",
    )
    assert reason_of(StagingError(STAGING_MESSAGE)).startswith(
        'ValueError: Input 0 of layer "cifar_resnet18" is incompatible'
    )


def test_a_qualified_inner_error_is_named_by_its_class_alone() -> None:
    reason = reason_of(StagingError(OOM_INSIDE))
    assert reason.startswith("ResourceExhaustedError: OOM when allocating tensor")
    assert "\n" not in reason


def test_an_ordinary_multi_line_message_keeps_its_first_line() -> None:
    assert reason_of(RuntimeError("converter exploded\nsecond line")) == (
        "RuntimeError: converter exploded"
    )
    assert reason_of(MemoryError()) == "MemoryError: out of memory"
    assert len(reason_of(ValueError("x" * 2000))) == 500


# ---------------------------------------------------------------- phases that fail


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Cifar10:
    root = write_synthetic(tmp_path_factory.mktemp("synth"), train_per_batch=200, test_count=200)
    return load_cifar10(root)


def run_study(fw: NumpyFramework, data: Cifar10, out: Path, *extra: str):
    spec = build_spec("smoke", None, [*FAST, "measure.profile.enabled=false", *extra])
    return Study(fw, spec, data, out, "test-run", "local (test)").run(threads=1)


class WrappedTrainingError(NumpyFramework):
    def trainer(self, model, optim):
        raise StagingError(STAGING_MESSAGE)


class OutOfHostMemory(NumpyFramework):
    def quantize_ptq(self, model, calibration):
        raise MemoryError


class CudaOutOfMemory(NumpyFramework):
    def convert_qat(self, model):
        raise RuntimeError(
            "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.19 GiB total capacity)"
        )


class DiskFull(NumpyFramework):
    def save(self, model, directory, stem):
        if stem == "qat":
            raise OSError(errno.ENOSPC, "No space left on device", str(directory / "qat.npz"))
        return super().save(model, directory, stem)


def test_a_full_disk_stops_the_study_recording_the_phase_and_the_file(
    data: Cifar10, tmp_path: Path
) -> None:
    """Every later write would fail too: the phase is recorded failed, the study 'failed'
    (not 'running', not 'complete'), and the error naming the file reaches the entrypoint."""
    with pytest.raises(OSError) as caught:
        run_study(DiskFull(), data, tmp_path)

    assert caught.value.errno == errno.ENOSPC
    saved = read_metrics(tmp_path / "metrics.json")
    assert saved.status == "failed" and "qat.npz" in saved.error
    assert saved.variants["qat"].status == "failed"
    assert [saved.variants[v].status for v in ("baseline", "ptq")] == ["ok", "ok"]


def test_a_wrapped_error_fails_its_phase_with_the_root_cause(data, tmp_path: Path) -> None:
    metrics = run_study(WrappedTrainingError(), data, tmp_path)
    reason = metrics.variants["baseline"].reason
    assert reason.startswith('ValueError: Input 0 of layer "cifar_resnet18"'), reason
    assert read_metrics(tmp_path / "metrics.json").variants["baseline"].reason == reason


@pytest.mark.parametrize(
    ("fw", "phase", "reason"),
    [
        (OutOfHostMemory(), "ptq", "MemoryError: out of memory"),
        (CudaOutOfMemory(), "qat", "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"),
    ],
)
def test_a_phase_that_fails_is_recorded_and_the_study_ends_complete_with_failures(
    fw: NumpyFramework, phase: str, reason: str, data: Cifar10, tmp_path: Path
) -> None:
    metrics = run_study(fw, data, tmp_path)
    failed = metrics.variants[phase]
    assert failed.status == "failed" and failed.reason.startswith(reason), failed.reason
    others = [v.status for name, v in metrics.variants.items() if name != phase]
    assert others == ["ok", "ok"]  # the study went on past the failure
    saved = read_metrics(tmp_path / "metrics.json")
    assert saved.status == "complete" and saved.outcome == COMPLETE_WITH_FAILURES
    assert saved.failed_phases() == [phase]


class QATRefused(NumpyFramework):
    """A framework whose QAT tool refuses a layer of this model (tfmot and LayerNorm)."""

    def prepare_qat(self, model):
        raise Unsupported(
            "Layer norm:LayerNormalization is not supported",
            "annotate only the Dense layers (tensorflow.qat_flow = dense_only)",
        )


def test_a_phase_the_framework_cannot_take_is_a_finding_not_a_failure(
    data: Cifar10, tmp_path: Path
) -> None:
    metrics = run_study(QATRefused(), data, tmp_path)
    qat = metrics.variants["qat"]
    assert qat.status == "unsupported"
    assert qat.reason == (
        "Layer norm:LayerNormalization is not supported "
        "(workaround: annotate only the Dense layers (tensorflow.qat_flow = dense_only))"
    )
    assert [metrics.variants[v].status for v in ("baseline", "ptq")] == ["ok", "ok"]
    saved = read_metrics(tmp_path / "metrics.json")
    # The study is complete, not "complete with failures": the harness did its job.
    assert saved.outcome == "complete" and saved.failures() == []


class Diverging(NumpyFramework):
    def trainer(self, model, optim):
        inner = super().trainer(model, optim)
        inner.end_epoch = lambda: (float("nan"), 0.0)
        return inner


def test_nan_loss_fails_the_phase_and_the_study_ends_complete_with_failures(
    data, tmp_path: Path
) -> None:
    metrics = run_study(Diverging(), data, tmp_path)
    assert metrics.variants["baseline"].reason.startswith("FloatingPointError: baseline training")
    assert {metrics.variants[p].status for p in ("ptq", "qat")} == {"skipped"}
    assert read_metrics(tmp_path / "metrics.json").outcome == COMPLETE_WITH_FAILURES


# ---------------------------------------------------------------- calibration images


class CountingPTQ(NumpyFramework):
    calibrated: list[int] | None = None

    def quantize_ptq(self, model, calibration):
        self.calibrated = [len(b) for b in calibration]
        return super().quantize_ptq(model, calibration)


def test_too_few_calibration_images_fail_ptq_naming_the_setting(data, tmp_path: Path) -> None:
    fw = CountingPTQ()
    too_many = len(data.train_images) + 1
    # The spec allows it (its limit is above the data); the data has one image too few.
    limit = f"data.train_limit={too_many}"
    metrics = run_study(fw, data, tmp_path, limit, f"ptq.calibration_samples={too_many}")
    ptq = metrics.variants["ptq"]
    assert ptq.status == "failed"
    assert f"ptq.calibration_samples={too_many} exceeds the {too_many - 1} training" in ptq.reason
    assert "lower ptq.calibration_samples" in ptq.reason
    assert fw.calibrated is None  # never calibrated on fewer images than asked
    assert metrics.variants["qat"].status == "ok"


def test_calibration_batches_hold_exactly_the_samples_asked_for() -> None:
    images = np.zeros((100, 32, 32, 3), np.uint8)
    batches = calibration_batches(images, PTQSpec(calibration_samples=70), seed=0)
    assert [len(b) for b in batches] == [32, 32, 6]
    assert len(calibration_batches(images, PTQSpec(calibration_samples=100), 0)[-1]) == 4
    with pytest.raises(CalibrationError, match="exceeds the 100 training images"):
        calibration_batches(images, PTQSpec(calibration_samples=101), seed=0)


# ---------------------------------------------------------------- outside any phase


class TraceElsewhere(NumpyFramework):
    """A runner bug outside any phase: a profile trace written outside its folder."""

    def __init__(self, elsewhere: Path) -> None:
        self.elsewhere = elsewhere

    def profile(self, model, work, schedule, trace_dir, name):
        capture = super().profile(model, work, schedule, trace_dir, name)
        moved = self.elsewhere / capture.trace.name
        capture.trace.replace(moved)
        return ProfileCapture(capture.tool, capture.device, moved, capture.viewer, capture.ops)


def test_an_error_outside_the_phases_ends_the_file_failed_with_its_reason(
    data, tmp_path: Path
) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    spec = build_spec("smoke", None, FAST)
    with pytest.raises(ValueError, match="is not in the subpath"):
        Study(TraceElsewhere(elsewhere), spec, data, out, "r", "local").run(threads=1)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["status"] == "failed"
    assert saved["error"].startswith("ValueError: ")
    assert saved["variants"]["baseline"]["status"] == "ok"  # what finished is kept
