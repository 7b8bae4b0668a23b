"""The three phases of the study, built from the training and measurement units.

baseline: train fp32 (from the shared initial weights), evaluate, size, latency.
ptq: calibrate the fp32 model on the shared calibration images, convert, measure.
qat: fine-tune a fake-quantized copy of the fp32 model, convert, measure.
Each returns its model and its VariantMetrics; failures are the driver's to record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness_contract.data.cifar import Cifar10
from harness_contract.data.stream import calibration_indices
from harness_contract.metrics import VariantMetrics
from harness_contract.metrics.figures import AccuracyStats, TrainingStats
from harness_contract.spec import ExperimentSpec, OptimSpec, PTQSpec
from harness_contract.study.framework import DeviceInfo, Framework, Quantized
from harness_contract.study.measurement import Measurement
from harness_contract.study.memory import PhaseMemory
from harness_contract.study.provenance import start_weights, weights_label
from harness_contract.study.training import train, train_stream


class CalibrationError(ValueError):
    """PTQ cannot calibrate on the images the spec asks for."""


def calibration_batches(images: np.ndarray, ptq: PTQSpec, seed: int) -> list[np.ndarray]:
    """The shared calibration images (a seeded subset of the training split), in batches.

    Exactly ``ptq.calibration_samples`` images or an error: never silently fewer.
    """
    available = len(images)
    if ptq.calibration_samples > available:
        raise CalibrationError(
            f"ptq.calibration_samples={ptq.calibration_samples} exceeds the {available} "
            f"training images; lower ptq.calibration_samples or use more training images"
        )
    chosen = images[calibration_indices(available, ptq.calibration_samples, seed)]
    step = ptq.calibration_batch_size
    return [chosen[i : i + step] for i in range(0, len(chosen), step)]


@dataclass
class Phases:
    """The phase bodies of one study. ``weights_label`` is set once the baseline has
    chosen its starting weights; ``fp32_predictions`` once it has been evaluated."""

    fw: Framework
    spec: ExperimentSpec
    data: Cifar10
    device: DeviceInfo
    threads: int
    measurement: Measurement
    memory: PhaseMemory

    def __post_init__(self) -> None:
        self.weights_label: str | None = None
        self.fp32_predictions: np.ndarray | None = None
        self.qat_trained: Any = None  # the fine-tuned QAT model before conversion

    def baseline(self) -> tuple[Any, VariantMetrics]:
        weights = start_weights(self.spec.model, self.spec.seed)
        model = self.fw.build(weights)
        if weights is None:  # the framework's own initializers: name what they drew
            self.weights_label = weights_label(self.fw.weights_of(model), own=True)
        else:
            self.weights_label = weights_label(weights)
        del weights  # the model holds them now; the phase's memory peak should not
        training = None
        if self.spec.train.epochs > 0:
            model, training = self._train(model, self.spec.train, "baseline")
        logits = self.measurement.predict(model)
        self.fp32_predictions = logits.argmax(1)
        variant = VariantMetrics(
            variant="baseline",
            status="ok",
            precision="fp32",
            accuracy=self._accuracy(logits, model, compare=False),
            training=training,
        )
        self.measurement.measure(model, variant, "baseline")
        return model, variant

    def ptq(self, fp32: Any) -> tuple[Any, VariantMetrics]:
        batches = calibration_batches(self.data.train_images, self.spec.ptq, self.spec.seed)
        q = self.fw.quantize_ptq(fp32, batches)
        return q.model, self._quantized("ptq", q)

    def qat(self, fp32: Any) -> tuple[Any, VariantMetrics]:
        model, training = self.fine_tune(self.fw.prepare_qat(fp32))
        # Kept for the per-layer analysis: QAT's error is measured against its own
        # fine-tuned float weights, not the baseline's (analysis.layer_analysis).
        self.qat_trained = model
        q = self.fw.convert_qat(model)
        variant = self._quantized("qat", q)
        variant.training = training
        return q.model, variant

    def fine_tune(self, model: Any) -> tuple[Any, TrainingStats | None]:
        """The study's QAT fine-tuning of a prepared (fake-quantized) model, as the qat
        phase runs it; a runtime rung that needs its own QAT model calls this."""
        if self.spec.qat.epochs == 0:
            return model, None
        return self._train(model, self.spec.qat, "qat")

    def _train(self, model: Any, optim: OptimSpec, purpose: str) -> tuple[Any, TrainingStats]:
        stream = train_stream(self.data, optim, self.spec.seed, self.spec.data.augment, purpose)
        return train(
            self.fw,
            model,
            optim,
            stream,
            purpose=purpose,
            device=self.device.train_device,
            threads=self.threads,
            part=lambda: self.memory.part("training"),
        )

    def _quantized(self, name: str, q: Quantized) -> VariantMetrics:
        logits = self.measurement.predict(q.model)
        variant = VariantMetrics(
            variant=name,
            status="ok",
            precision="int8",
            accuracy=self._accuracy(logits, q.model, compare=True),
            conversion=q.conversion,
        )
        self.measurement.measure(q.model, variant, name)
        return variant

    def _accuracy(self, logits: np.ndarray, model: Any, compare: bool) -> AccuracyStats:
        fp32 = self.fp32_predictions if compare else None
        return self.measurement.accuracy(model, fp32, logits)
