"""TensorFlow's answers to the support matrix (harness_contract.study.support.PROBES), each found
by doing the thing on a tiny Keras model (8x8 inputs, a few layers) at the installed
versions: the whole set takes a few seconds.

Each probe returns (outcome, detail); the detail names what it saw, and a "no" the exact
error or the reason. A probe that raises is a "no" with its error (support_child).
"""

from __future__ import annotations

import functools
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from .. import profile as tf_profile
from ..litert import interpreter_class, quantized_ops

Answer = tuple[str, str]
SHAPE = (8, 8, 3)
_RNG = np.random.default_rng(0)
SAMPLES = _RNG.standard_normal((4, *SHAPE)).astype(np.float32)


def _tiny(layers: Callable[[Any], Any] | None = None) -> keras.Model:
    """conv+ReLU, conv+ReLU, pool, dense: the smallest model with what the probes ask about."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(SHAPE, name="images")
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    x = keras.layers.ReLU(name="r1")(x)
    if layers is not None:
        x = layers(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="c2")(x)
    x = keras.layers.ReLU(name="r2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="fc")(x))


def _converter(model: keras.Model, dataset: Callable[[], Any] | None) -> bytes:
    """Full-integer conversion, as the runner's PTQ flow does it (int8 kernels only, int8
    input and output); ``dataset``: the representative data (None for a QAT model)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.experimental_lower_to_saved_model = False
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if dataset is not None:
        converter.representative_dataset = dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


def _samples() -> Any:
    for sample in SAMPLES:
        yield [sample[None]]


@functools.cache
def _ptq() -> bytes:
    """The tiny model PTQ-converted once; the probes that inspect an int8 model share it."""
    return _converter(_tiny(), _samples)


def _interpreter(model: bytes | None = None, path: Path | None = None, **kwargs: Any) -> Any:
    cls, _ = interpreter_class()
    interp = cls(model_content=model, model_path=None if path is None else str(path), **kwargs)
    interp.allocate_tensors()
    return interp


def _run(interp: Any, images: np.ndarray) -> np.ndarray:
    """Quantize ``images`` into the int8 input, invoke, return the raw int8 output."""
    detail = interp.get_input_details()[0]
    if detail["shape"][0] != len(images):
        interp.resize_tensor_input(detail["index"], [len(images), *SHAPE])
        interp.allocate_tensors()
    scale, zero_point = detail["quantization"]
    q = np.clip(np.round(images / scale + zero_point), -128, 127).astype(np.int8)
    interp.set_tensor(detail["index"], q)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def _ops(model: bytes) -> list[str]:
    """Every builtin op of a .tflite model, in graph order (before any delegate)."""
    cls, _ = interpreter_class()
    return [op["op_name"] for op in cls(model_content=model)._get_ops_details()]


# ---------------------------------------------------------------- hardware


def int8_cpu() -> Answer:
    model = _ptq()
    out = _run(_interpreter(model, num_threads=1), SAMPLES[:1])
    if out.dtype != np.int8:
        return "no", f"the converted model returned {out.dtype}, not int8"
    return "yes", (
        f"TFLiteConverter full-int8 PTQ, run by {interpreter_class()[1]} on the CPU: "
        f"int8 kernels {', '.join(quantized_ops(model))}; output int8 {out.shape}"
    )


def int8_gpu() -> Answer:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        build = "CUDA build" if tf.test.is_built_with_cuda() else "CPU-only build"
        return "not probed", f"no GPU visible to TensorFlow here ({build} {tf.__version__})"
    # LiteRT runs int8 on a GPU only through its GPU delegate, which the Python wheel
    # does not ship; loading it is the test.
    from ai_edge_litert.interpreter import load_delegate

    delegate = load_delegate("libtensorflowlite_gpu_delegate.so")
    _run(_interpreter(_ptq(), experimental_delegates=[delegate]), SAMPLES[:1])
    return "yes", "LiteRT's GPU delegate loaded and ran the int8 model"


def int8_native() -> Answer:
    """Can TensorFlow's own runtime run int8 convolutions (the kind a .tflite holds)?"""
    q = tf.bitcast(tf.zeros((1, 8, 8, 3), tf.int8), tf.qint8)
    w = tf.bitcast(tf.zeros((3, 3, 3, 4), tf.int8), tf.qint8)
    try:
        tf.raw_ops.QuantizedConv2D(
            input=q,
            filter=w,
            min_input=-1.0,
            max_input=1.0,
            min_filter=-1.0,
            max_filter=1.0,
            strides=[1, 1, 1, 1],
            padding="SAME",
        )
    except tf.errors.OpError as exc:
        first = str(exc).splitlines()[0]
        return "no", (
            f"the int8 model is a .tflite only the LiteRT interpreter runs; TensorFlow's own "
            f"QuantizedConv2D has no int8 (qint8) kernel: {type(exc).__name__}: {first} "
            f"(its legacy quint8 kernel exists, but no converter targets it)"
        )
    return "yes", "tf.raw_ops.QuantizedConv2D ran on qint8 input and filter in TensorFlow"


# ---------------------------------------------------------------- profiler


def profiler_training() -> Answer:
    model = _tiny()
    model.compile(optimizer="sgd", loss=keras.losses.MeanSquaredError())
    y = np.zeros((len(SAMPLES), 3), np.float32)
    model.train_on_batch(SAMPLES, y)  # traced once, outside the profile
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            for step in range(2):
                with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
                    model.train_on_batch(SAMPLES, y)
        finally:
            tf.profiler.experimental.stop()
        xplanes = sorted(Path(logdir).glob("plugins/profile/*/*.xplane.pb"))
        if not xplanes:
            return "no", f"tf.profiler wrote no plugins/profile/<run>/*.xplane.pb under {logdir}"
        try:
            ops = sorted({s.name for s in tf_profile.op_samples(xplanes)})
        except ImportError:
            return "yes", "an xplane was written; its op table needs tensorboard-plugin-profile"
    convs = [op for op in ops if "Conv2D" in op]
    if not convs:
        return "no", f"the trace of two train steps holds no Conv2D op (ops: {ops[:12]})"
    return "yes", (
        f"tf.profiler traced two train_on_batch steps of a Keras model: {len(ops)} op types "
        f"including {', '.join(convs[:4])}"
    )


def profiler_int8() -> Answer:
    """An op-level profile of LiteRT int8 inference from Python: a profiler hook on the
    interpreter, or LiteRT's ops showing up in a tf.profiler trace around invoke()."""
    cls, name = interpreter_class()
    hooks = sorted(m for m in dir(cls) if "profil" in m.lower())
    interp = _interpreter(_ptq(), num_threads=1)
    _run(interp, SAMPLES[:1])
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            for _ in range(5):
                _run(interp, SAMPLES[:1])
        finally:
            tf.profiler.experimental.stop()
        xplanes = sorted(Path(logdir).glob("plugins/profile/*/*.xplane.pb"))
        events = _xplane_event_names(xplanes)
    litert_ops = set(_ops(_ptq()))
    seen = sorted(e for e in events if any(op in e.upper() for op in litert_ops))
    if seen or hooks:
        return "yes", f"profiler hooks {hooks}; LiteRT ops in a tf.profiler trace: {seen[:8]}"
    return "no", (
        f"{name}.Interpreter has no profiler method or option, and tf.profiler around five "
        f"invoke() calls recorded {len(events)} event names in {len(xplanes)} xplane(s), "
        f"none of them a LiteRT op ({', '.join(sorted(litert_ops))}): the interpreter runs "
        f"outside TensorFlow's tracer. Per-op int8 times need LiteRT's benchmark_model "
        f"binary (--enable_op_profiling=true)"
    )


def _xplane_event_names(xplanes: list[Path]) -> set[str]:
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    names: set[str] = set()
    for path in xplanes:
        space = xplane_pb2.XSpace()
        space.ParseFromString(path.read_bytes())
        for plane in space.planes:
            names |= {m.name for m in plane.event_metadata.values() if m.name}
    return names


# ---------------------------------------------------------------- quantization


def auto_fusion() -> Answer:
    ops = _ops(_ptq())
    relus = [op for op in ops if op.startswith("RELU")]
    if relus:
        return "no", f"the int8 graph keeps separate {relus} ops beside CONV_2D: {ops}"
    return "yes", f"conv+ReLU fused into CONV_2D's activation: no RELU op among {ops}"


def auto_setup() -> Answer:
    ops = quantized_ops(_ptq())
    return "yes", (
        "TFLiteConverter quantized an unmodified Keras model from a representative dataset "
        f"alone (no stubs, no annotation): {', '.join(ops)}"
    )


def qat_convert() -> Answer:
    import tensorflow_model_optimization as tfmot

    # Untrained: conversion reads the fake-quant ranges, whatever training made of them
    # (tfmot starts them at [-6, 6]); a training step would only add seconds.
    qat = tfmot.quantization.keras.quantize_model(_tiny())
    ops = quantized_ops(_converter(qat, None))
    if not any(op.startswith("CONV_2D") for op in ops):
        return "no", f"the converted QAT model has no int8 conv kernel (int8 ops: {ops})"
    return "yes", f"tfmot quantize_model, then a full-int8 convert: {', '.join(ops)}"


class Scale(keras.layers.Layer):
    """A custom layer tfmot has no quantize config for."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x * 2.0


def custom_layer() -> Answer:
    import tensorflow_model_optimization as tfmot

    try:
        tfmot.quantization.keras.quantize_model(_tiny(lambda x: Scale(name="scale")(x)))
    except (RuntimeError, ValueError, TypeError) as exc:
        return "no", f"tfmot quantize_model: {type(exc).__name__}: {exc}"
    return "yes", "tfmot quantize_model accepted a model with a custom layer, unannotated"


def embedding() -> Answer:
    inputs = keras.Input((4,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(50, 8, name="embedding")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(keras.layers.Flatten()(x)))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.experimental_lower_to_saved_model = False
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: (
        [rng.integers(0, 50, (1, 4)).astype(np.int32)] for _ in range(4)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blob = converter.convert()
    cls, _ = interpreter_class()
    interp = cls(model_content=blob)
    dtypes = {t["index"]: t["dtype"] for t in interp.get_tensor_details()}
    gathers = [op for op in interp._get_ops_details() if op["op_name"] == "GATHER"]
    if not gathers:
        return "no", f"no GATHER op in the converted model: {_ops(blob)}"
    table = np.dtype(dtypes[gathers[0]["inputs"][0]])
    if table != np.int8:
        return "no", f"the Embedding table stayed {table} (GATHER reads {table})"
    return "yes", f"Embedding became GATHER over an int8 table; ops {_ops(blob)}"


# ---------------------------------------------------------------- analysis


def per_layer_access() -> Answer:
    interp = _interpreter(_ptq(), experimental_preserve_all_tensors=True)
    _run(interp, SAMPLES[:1])
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    read: dict[str, tuple[int, ...]] = {}
    for op in interp._get_ops_details():
        for index in op["outputs"]:
            tensor = interp.get_tensor(index)
            # Values computed, not left empty; a DELEGATE node repeats its ops' outputs.
            if op["op_name"] != "DELEGATE" and tensor.dtype == np.int8 and tensor.any():
                read[f"{op['op_name']} {names[index]}"] = tensor.shape
    if len(read) < 2:
        return "no", f"after invoke() only these int8 op outputs held values: {read}"
    return "yes", (
        f"Interpreter(experimental_preserve_all_tensors=True): {len(read)} int8 op outputs "
        f"read after invoke(): {'; '.join(f'{k} {v}' for k, v in read.items())}"
    )


def int8_export() -> Answer:
    model = _ptq()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiny-int8.tflite"
        path.write_bytes(model)
        reloaded = _run(_interpreter(path=path, num_threads=1), SAMPLES)
        size = path.stat().st_size
    original = _run(_interpreter(model, num_threads=1), SAMPLES)
    if not np.array_equal(original, reloaded):
        return "no", f"the reloaded .tflite gave {reloaded[0]}, the original {original[0]}"
    return "yes", (
        f".tflite written ({size} bytes), reloaded from the file: identical int8 outputs "
        f"on {len(SAMPLES)} inputs"
    )


from .transformer import PROBES as TRANSFORMER_PROBES  # noqa: E402 - needs _converter above

PROBES: dict[str, Callable[[], Answer]] = {
    "int8_cpu": int8_cpu,
    "int8_gpu": int8_gpu,
    "int8_native": int8_native,
    "profiler_training": profiler_training,
    "profiler_int8": profiler_int8,
    "auto_fusion": auto_fusion,
    "auto_setup": auto_setup,
    "qat_convert": qat_convert,
    "custom_layer": custom_layer,
    "embedding": embedding,
    "per_layer_access": per_layer_access,
    "int8_export": int8_export,
    **TRANSFORMER_PROBES,
}
