"""The LiteRT runtime: a .tflite model (fp32, or full-integer int8) run by LiteRT's
interpreter, one per batch size and thread count; the converter every .tflite goes
through; and the check that an int8 model really holds int8 kernels.

TensorFlow cannot run an int8 model natively: the .tflite bytes run in the LiteRT
interpreter, on CPU. fp32 on LiteRT (the baseline's "litert" rung) is the same converter
without quantization, float input and output, run by the same interpreter class
(XNNPACK's fp32 kernels).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from .model import trainable_parameters

FP32_FLOW = "tflite-fp32"


def interpreter_class() -> tuple[type, str]:
    """LiteRT's interpreter (tf.lite.Interpreter is deprecated), else tf.lite's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return tf.lite.Interpreter, "tf.lite.Interpreter (fallback: ai_edge_litert missing)"
    return Interpreter, "ai_edge_litert.interpreter"


@dataclass
class TFLiteModel:
    """A .tflite model (full-integer int8, or fp32) and one LiteRT interpreter per batch
    size and thread count it was asked to run (``threads``: the count new calls use, see
    ``using_threads``). Callers pass and get float tensors either way."""

    tflite: bytes
    flow: str
    parameters: int
    threads: int
    precision: str = "int8"  # "int8": int8 input and output; "fp32": float throughout
    _interpreters: dict[tuple[int, int], Any] = field(default_factory=dict, repr=False)

    def interpreter(self, batch: int) -> Any:
        key = (batch, self.threads)
        if key not in self._interpreters:
            cls, _ = interpreter_class()
            # num_threads is fixed at construction: XNNPACK sizes its thread pool then.
            interp = cls(model_content=self.tflite, num_threads=self.threads)
            interp.resize_tensor_input(interp.get_input_details()[0]["index"], [batch, 32, 32, 3])
            interp.allocate_tensors()
            self._interpreters[key] = interp
        return self._interpreters[key]

    @contextlib.contextmanager
    def using_threads(self, threads: int) -> Iterator[None]:
        """Interpreters made or fetched inside the block run on ``threads`` threads."""
        previous, self.threads = self.threads, threads
        try:
            yield
        finally:
            self.threads = previous

    def prepared(self, images: np.ndarray) -> Any:
        """An interpreter for this batch with the images (quantized for an int8 model)
        already set as its input."""
        interp = self.interpreter(len(images))
        detail = interp.get_input_details()[0]
        interp.set_tensor(detail["index"], quantize_input(images, detail))
        return interp

    def run(self, images: np.ndarray) -> np.ndarray:
        """Float logits for normalized float32 NHWC images."""
        interp = self.prepared(images)
        interp.invoke()
        detail = interp.get_output_details()[0]
        return dequantize_output(interp.get_tensor(detail["index"]), detail)


def quantize_input(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """``x`` as the input tensor wants it: int8 by its scale and zero point, float as is."""
    if np.issubdtype(detail["dtype"], np.floating):
        return np.ascontiguousarray(x, dtype=detail["dtype"])
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    q = np.round(x / np.float32(scale) + zero_point)
    return np.clip(q, info.min, info.max).astype(detail["dtype"])


def dequantize_output(q: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    if np.issubdtype(detail["dtype"], np.floating):
        return q.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (q.astype(np.float32) - zero_point) * np.float32(scale)


def quantized_ops(model: bytes) -> list[str]:
    """The builtin ops of a .tflite ``model`` that take int8 tensors: the proof the model
    really is int8.

    Read from an interpreter that has not allocated tensors yet, so its graph is the
    model's own ops rather than the XNNPACK delegate that replaces them.
    """
    cls, _ = interpreter_class()
    interp = cls(model_content=model)
    int8 = {t["index"] for t in interp.get_tensor_details() if t["dtype"] == np.int8}
    found = {
        op["op_name"]
        for op in interp._get_ops_details()  # no public op listing
        if any(i in int8 for i in op["inputs"])
    }
    return sorted(f"{name}[int8]" for name in found)


def require_int8(tflite: bytes, flow: str) -> list[str]:
    ops = quantized_ops(tflite)
    if not any(op.startswith(("CONV_2D", "FULLY_CONNECTED")) for op in ops):
        raise RuntimeError(
            f"{flow} conversion produced a model without int8 conv/dense kernels "
            f"(int8 ops found: {ops or 'none'})"
        )
    return ops


def converter_for(model: keras.Model) -> tf.lite.TFLiteConverter:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    # By default the converter first round-trips the model through a SavedModel, which for
    # a Keras model retraces every layer (2-3x the whole conversion time) and only adds
    # signature metadata: the kernels and outputs are identical without it.
    converter.experimental_lower_to_saved_model = False
    return converter


def full_int8(converter: tf.lite.TFLiteConverter, *, calibrated: bool) -> tf.lite.TFLiteConverter:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if calibrated:
        # Fail rather than fall back to float kernels for an op it cannot quantize. (A QAT
        # model carries its own ranges; the converter refuses this flag without a dataset.)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter


def convert(converter: tf.lite.TFLiteConverter) -> bytes:
    with warnings.catch_warnings():
        # Off the SavedModel path the converter asks for TOCO-era input statistics it does
        # not use: the int8 input's scale comes from calibration or the QAT input range.
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected")
        return converter.convert()


def fp32_tflite(model: keras.Model, threads: int) -> tuple[TFLiteModel, float]:
    """The fp32 model as a .tflite for LiteRT (float input and output), and the seconds
    the conversion took."""
    t0 = time.perf_counter()
    blob = convert(converter_for(model))
    elapsed = time.perf_counter() - t0
    return TFLiteModel(blob, FP32_FLOW, trainable_parameters(model), threads, "fp32"), elapsed
