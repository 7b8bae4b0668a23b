"""Fairness rules 1 and 3: the study hands both frameworks the same batches, learning rates
and calibration images, in the same order.

Both runners go through the real pipeline (harness_contract.study.pipeline.Study) with their
trainers and quantize_ptq wrapped to record what they are given.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tf_runner  # noqa: F401 - sets TF_USE_LEGACY_KERAS before TensorFlow is first imported
from harness_contract.data.cifar import Cifar10, load_cifar10, write_synthetic
from harness_contract.data.stream import TrainStream, calibration_indices
from harness_contract.spec import ExperimentSpec, OptimSpec, build_spec
from harness_contract.study.framework import Framework, Quantized, Trainer
from harness_contract.study.pipeline import Study
from harness_contract.study.schedule import lr_at

pytest.importorskip(
    "tensorflow", reason="TensorFlow is not installed: pip install -e '.[tensorflow]'"
)
pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[pytorch]'")

from tf_runner.runner import TFFramework  # noqa: E402
from torch_runner.runner import TorchFramework  # noqa: E402

Record = tuple[str, float]  # sha256 of a batch's images and labels, and its lr

TINY = [
    "device=cpu",
    "model.width_multiplier=0.0625",
    "train.epochs=2",
    "train.batch_size=16",
    "train.warmup_epochs=1",  # the lr changes every step
    "train.milestones=[1]",
    "qat.epochs=1",
    "qat.batch_size=16",
    "ptq.calibration_samples=24",
    "ptq.calibration_batch_size=10",  # a short last calibration batch
    "measure.eval_batch_size=16",
    "measure.latency.batch_sizes=[1]",
    "measure.latency.min_count=1",
    "measure.latency.min_seconds=0",
    "measure.latency.warmup_count=0",
    "measure.latency.warmup_seconds=0",
    # Profiling trains a throwaway copy on the same batches; these tests follow the study alone.
    "measure.profile.enabled=false",
    "support.enabled=false",
    "analysis.enabled=false",
    "pytorch.runtimes=[]",
    "tensorflow.runtimes=[]",
]


class _Stop(Exception):
    """Raised after recording, so the expensive conversions never run."""


def _digest(images: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    h.update(np.asarray(labels, np.int64).tobytes())
    return h.hexdigest()


class _RecordingTrainer(Trainer):
    def __init__(self, inner: Trainer, log: list[Record]) -> None:
        self.inner, self.log = inner, log

    def step(self, images: np.ndarray, labels: np.ndarray, lr: float) -> None:
        self.log.append((_digest(images, labels), lr))
        self.inner.step(images, labels, lr)

    def end_epoch(self) -> tuple[float, float]:
        return self.inner.end_epoch()


def _recording(base: type[Framework]) -> Framework:
    """The framework with every trainer (one log each) and PTQ's inputs recorded."""

    class Recording(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.trainer_logs: list[list[Record]] = []
            self.calibration: list[str] = []

        def trainer(self, model: Any, optim: OptimSpec) -> Trainer:
            self.trainer_logs.append([])
            return _RecordingTrainer(super().trainer(model, optim), self.trainer_logs[-1])

        def quantize_ptq(self, model: Any, calibration: list[np.ndarray]) -> Quantized:
            self.calibration = [_digest(b, np.arange(len(b))) for b in calibration]
            raise _Stop("calibration recorded")

        def prepare_qat(self, model: Any) -> Any:
            return model  # QAT's training stream is what matters here, not fake-quantization

        def convert_qat(self, model: Any) -> Quantized:
            raise _Stop("QAT stream recorded")

    return Recording()


@pytest.fixture(scope="module")
def study_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExperimentSpec, Cifar10]:
    root = write_synthetic(tmp_path_factory.mktemp("tiny-cifar"), 20, 16, seed=1)
    return build_spec("smoke", overrides=TINY), load_cifar10(root)


@pytest.fixture(scope="module")
def recorded(
    study_inputs: tuple[ExperimentSpec, Cifar10], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Framework]:
    spec, data = study_inputs
    out: dict[str, Framework] = {}
    for base in (TorchFramework, TFFramework):
        fw = _recording(base)
        run_dir: Path = tmp_path_factory.mktemp(fw.name)
        metrics = Study(fw, spec, data, run_dir, "stream-identity", "test").run(threads=2)
        assert metrics.variants["baseline"].status == "ok", metrics.variants["baseline"].reason
        for phase in ("ptq", "qat"):  # stopped on purpose, right after recording
            assert "_Stop" in (metrics.variants[phase].reason or ""), metrics.variants[phase]
        out[fw.name] = fw
    return out


def _expected_steps(spec: ExperimentSpec, data: Cifar10, optim: OptimSpec, purpose: str) -> list:
    stream = TrainStream(
        data.train_images,
        data.train_labels,
        batch_size=optim.batch_size,
        seed=spec.seed,
        augment=spec.data.augment,
        purpose=purpose,
    )
    steps = len(stream)
    return [
        (_digest(b.images, b.labels), lr_at(optim, epoch, i, steps))
        for epoch in range(optim.epochs)
        for i, b in enumerate(stream.epoch(epoch))
    ]


def test_both_frameworks_train_on_the_same_batches_with_the_same_lr(
    recorded: dict[str, Framework], study_inputs: tuple[ExperimentSpec, Cifar10]
) -> None:
    spec, data = study_inputs
    torch_logs, tf_logs = recorded["pytorch"].trainer_logs, recorded["tensorflow"].trainer_logs
    assert len(torch_logs) == len(tf_logs) == 2  # baseline, then QAT
    assert torch_logs == tf_logs
    assert tf_logs[0] == _expected_steps(spec, data, spec.train, "baseline")
    assert tf_logs[1] == _expected_steps(spec, data, spec.qat, "qat")
    assert len({lr for _, lr in tf_logs[0]}) > 1  # the schedule really varied
    assert {d for d, _ in tf_logs[0]}.isdisjoint({d for d, _ in tf_logs[1]})


def test_both_frameworks_calibrate_on_the_same_images(
    recorded: dict[str, Framework], study_inputs: tuple[ExperimentSpec, Cifar10]
) -> None:
    spec, data = study_inputs
    idx = calibration_indices(len(data.train_images), spec.ptq.calibration_samples, spec.seed)
    images = data.train_images[idx]
    expected = [
        _digest(images[i : i + 10], np.arange(len(images[i : i + 10])))
        for i in range(0, len(images), 10)
    ]
    assert len(expected) == 3  # 10 + 10 + 4
    assert recorded["pytorch"].calibration == recorded["tensorflow"].calibration == expected
