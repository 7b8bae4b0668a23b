"""Static int8 quantization of the fp32 Keras model, run through the LiteRT interpreter.

* PTQ: ``TFLiteConverter.from_keras_model`` with a representative dataset (the shared
  calibration batches), full-integer: int8 kernels only, int8 input and output.
* QAT: ``tfmot.quantization.keras.quantize_model`` on a copy of the fp32 model, fine-tuned
  by the same trainer as the baseline, then converted the same way (its ranges come from
  training, so no representative dataset).

Either way the result is checked to really contain int8 kernels (tf_runner.litert runs it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from harness_contract.metrics.figures import ConversionStats

from .litert import TFLiteModel, convert, converter_for, full_int8, require_int8
from .model import trainable_parameters

PTQ_FLOW = "tflite-full-int8"
QAT_FLOW = "tfmot-qat-tflite-full-int8"


class _DatasetClock:
    """When the converter started and finished reading the representative dataset."""

    def __init__(self, batches: Sequence[np.ndarray]) -> None:
        self.batches = batches
        self.finished: float | None = None

    def __call__(self) -> Iterator[list[np.ndarray]]:
        for b in self.batches:
            yield [b]
        self.finished = time.perf_counter()


def ptq(
    fp32: keras.Model, calibration: Sequence[np.ndarray], threads: int
) -> tuple[TFLiteModel, ConversionStats]:
    """Calibrate on normalized float32 batches and convert.

    TFLite calibrates inside ``convert()``. Its time is split where the representative
    dataset is exhausted: ``calibration_s`` is graph conversion + calibration (as PyTorch's
    is export + prepare + calibration), ``conversion_s`` the quantization that follows.
    """
    clock = _DatasetClock(calibration)
    converter = full_int8(converter_for(fp32), calibrated=True)
    converter.representative_dataset = clock
    t0 = time.perf_counter()
    blob = convert(converter)
    t_end = time.perf_counter()
    if clock.finished is None:
        raise RuntimeError("the TFLite converter never read the whole representative dataset")
    ops = require_int8(blob, PTQ_FLOW)
    stats = ConversionStats(
        flow=PTQ_FLOW,
        device="cpu",
        calibration_samples=sum(len(b) for b in calibration),
        calibration_s=clock.finished - t0,
        conversion_s=t_end - clock.finished,
        quantized_ops=ops,
    )
    return TFLiteModel(blob, PTQ_FLOW, trainable_parameters(fp32), threads), stats


def prepare_qat(fp32: keras.Model, device: str) -> keras.Model:
    """Fake-quantized copy of the fp32 model (same weights) on ``device`` ("/CPU:0",
    "/GPU:0"); the fp32 model is left as it is."""
    import tensorflow_model_optimization as tfmot

    with tf.device(device):
        clone = keras.models.clone_model(fp32)
        clone.set_weights(fp32.get_weights())
        try:
            return tfmot.quantization.keras.quantize_model(clone)
        except (RuntimeError, ValueError, TypeError) as exc:
            # tfmot's message names the offending layer ("Layer <name>:<class> is not supported").
            raise RuntimeError(f"tfmot cannot quantize the model: {exc}") from exc


def convert_qat(
    qat: keras.Model, parameters: int, threads: int
) -> tuple[TFLiteModel, ConversionStats]:
    converter = full_int8(converter_for(qat), calibrated=False)
    t0 = time.perf_counter()
    blob = convert(converter)
    elapsed = time.perf_counter() - t0
    ops = require_int8(blob, QAT_FLOW)
    stats = ConversionStats(flow=QAT_FLOW, device="cpu", conversion_s=elapsed, quantized_ops=ops)
    return TFLiteModel(blob, QAT_FLOW, parameters, threads), stats
