"""Static int8 quantization of the fp32 Keras model, run through the LiteRT interpreter.

* PTQ: ``TFLiteConverter.from_keras_model`` with a representative dataset (the shared
  calibration batches), full-integer: int8 kernels only, int8 input and output.
* QAT: ``tfmot.quantization.keras.quantize_model`` on a copy of the fp32 model (or, with
  tensorflow.qat_flow = "dense_only", only its Dense and Conv2D layers annotated), fine-tuned
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
from harness_contract.spec.frameworks import QatFlow
from harness_contract.study.framework import Unsupported

from .litert import TFLiteModel, convert, converter_for, full_int8, require_int8
from .model import trainable_parameters

PTQ_FLOW = "tflite-full-int8"
QAT_FLOW = "tfmot-qat-tflite-full-int8"
# tensorflow.qat_flow = "dense_only": int8 input, output and Dense/Conv2D kernels; the ops
# tfmot left unannotated carry no trained ranges, so the converter keeps them in float.
QAT_DENSE_ONLY_FLOW = "tfmot-qat-dense-only-tflite-int8-io"
QAT_FLOW_NOTES = {
    "whole_model": (
        "QAT flow tensorflow.qat_flow=whole_model: tfmot quantize_model fake-quantized "
        "every layer it supports"
    ),
    "dense_only": (
        "QAT flow tensorflow.qat_flow=dense_only: tfmot fake-quantized only the Dense and "
        "Conv2D layers and the outputs of the layers feeding them (quantize_annotate_layer "
        "+ quantize_apply); LayerNorm, softmax and the attention matmuls trained in float "
        "and, with no trained ranges inside them, stay float in the .tflite (see ops)"
    ),
}
_CALL = {
    "whole_model": "quantize_model",
    "dense_only": "quantize_annotate_layer (Dense, Conv2D, their inputs) + quantize_apply",
}
_WORKAROUND = {
    "whole_model": (
        "set tensorflow.qat_flow=dense_only: tfmot then fake-quantizes only the Dense and "
        "Conv2D layers and their inputs; LayerNorm, softmax and the attention matmuls train "
        "in float"
    ),
    "dense_only": "none in tfmot; PTQ (ptq.enabled) quantizes the model",
}


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


def prepare_qat(fp32: keras.Model, device: str, flow: QatFlow = "whole_model") -> keras.Model:
    """Fake-quantized copy of the fp32 model (same weights) on ``device`` ("/CPU:0",
    "/GPU:0"); the fp32 model is left as it is.

    Raises Unsupported with tfmot's own message when tfmot cannot quantize the model
    (tensorflow.qat_flow "whole_model" on the ViT)."""
    with tf.device(device):
        clone = keras.models.clone_model(fp32)
        clone.set_weights(fp32.get_weights())
        from .qat_annotate import fake_quantize, unsupported_layers  # imports tfmot

        try:
            return fake_quantize(clone, flow)
        except (RuntimeError, ValueError, TypeError, AttributeError, KeyError) as exc:
            error = f"tfmot {_CALL[flow]} cannot quantize the model: {one_line(exc)}"
            unknown = unsupported_layers(clone)
            if flow == "whole_model" and unknown:
                # tfmot can fail rebuilding the graph before it names what it lacks.
                error += f" [layers tfmot's 8-bit registry does not support: {unknown}]"
            raise Unsupported(error, _WORKAROUND[flow]) from exc


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, without Keras' "Call arguments received" trailer."""
    text = str(exc).split("Call arguments received", 1)[0]
    return " ".join(text.split()) or type(exc).__name__


def qat_flow_name(flow: QatFlow) -> str:
    return QAT_FLOW if flow == "whole_model" else QAT_DENSE_ONLY_FLOW


def convert_qat(
    qat: keras.Model, parameters: int, threads: int, flow: QatFlow = "whole_model"
) -> tuple[TFLiteModel, ConversionStats]:
    name = qat_flow_name(flow)
    converter = full_int8(converter_for(qat), calibrated=False)
    t0 = time.perf_counter()
    blob = convert(converter)
    elapsed = time.perf_counter() - t0
    ops = require_int8(blob, name)
    stats = ConversionStats(flow=name, device="cpu", conversion_s=elapsed, quantized_ops=ops)
    return TFLiteModel(blob, name, parameters, threads), stats
