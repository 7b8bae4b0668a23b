"""TensorFlow's answers to the support matrix's Transformer questions, each found on a
one-block attention model (LayerNormalization, Dense qkv, tf.matmul, Softmax, tf.matmul,
a residual add, GELU, a Dense head): full-int8 TFLite conversion, the runner's PTQ flow,
then the converted operators' input types (int8: the op runs an int8 kernel); QAT with
tfmot's quantize_model, as the runner's QAT flow does it."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ..litert import interpreter_class
from . import Answer, _converter, _xplane_event_names

TOKENS, DIM = 4, 8
_SAMPLES = np.random.default_rng(0).standard_normal((4, TOKENS, DIM)).astype(np.float32)


def _attention() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((TOKENS, DIM), name="tokens")
    h = keras.layers.LayerNormalization(name="norm")(inputs)
    qkv = keras.layers.Dense(3 * DIM, name="qkv")(h)
    q, k, v = qkv[..., :DIM], qkv[..., DIM : 2 * DIM], qkv[..., 2 * DIM :]
    scores = tf.matmul(q, k, transpose_b=True) * DIM**-0.5
    attn = keras.layers.Softmax(axis=-1, name="softmax")(scores)
    x = keras.layers.Add(name="add")(
        [inputs, keras.layers.Dense(DIM, name="proj")(tf.matmul(attn, v))]
    )
    x = keras.layers.Activation("gelu", name="gelu")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def _samples() -> Any:
    for sample in _SAMPLES:
        yield [sample[None]]


@functools.cache
def _ptq_ops() -> list[tuple[str, str]]:
    """(op name, its first input's type) of the PTQ-converted attention model."""
    cls, _ = interpreter_class()
    interp = cls(model_content=_converter(_attention(), _samples))
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    return [
        (op["op_name"], np.dtype(tensors[op["inputs"][0]]["dtype"]).name)
        for op in interp._get_ops_details()
        if len(op["inputs"])
    ]


def _answer(names: tuple[str, ...], what: str) -> Answer:
    found = [(name, dtype) for name, dtype in _ptq_ops() if name in names]
    if not found:
        ops = ", ".join(sorted({name for name, _ in _ptq_ops()}))
        return "no", f"the full-int8 .tflite has no {'/'.join(names)} op for the {what} ({ops})"
    floats = [f"{name} ({dtype})" for name, dtype in found if dtype not in ("int8", "int16")]
    if floats:
        return "no", f"full-int8 conversion left the {what} in float: {', '.join(floats)}"
    kinds = ", ".join(sorted({f"{name} on {dtype}" for name, dtype in found}))
    return "yes", f"full-int8 TFLite conversion runs the {what} as {kinds}"


def int8_attention_matmul() -> Answer:
    return _answer(("BATCH_MATMUL",), "attention matmuls (activation x activation)")


def int8_softmax() -> Answer:
    return _answer(("SOFTMAX",), "softmax")


def int8_layer_norm() -> Answer:
    """Keras' LayerNormalization reaches TFLite decomposed (MEAN, SQUARED_DIFFERENCE, ADD,
    RSQRT, MUL, SUB): its ops are the compute ops before the first FULLY_CONNECTED (the
    qkv layer it feeds). Ops on int32 tensors are shape arithmetic and not counted."""
    ops = _ptq_ops()
    first_dense = next(i for i, (name, _) in enumerate(ops) if name == "FULLY_CONNECTED")
    norm = [op for op in ops[:first_dense] if op[1] != "int32" and op[0] not in _LAYOUT]
    floats = [f"{name} ({dtype})" for name, dtype in norm if dtype not in ("int8", "int16")]
    if not norm or floats:
        return "no", f"full-int8 conversion left the LayerNorm in float: {', '.join(floats)}"
    names = ", ".join(dict.fromkeys(name for name, _ in norm))
    return "yes", f"full-int8 TFLite conversion runs LayerNorm decomposed, all int8: {names}"


_LAYOUT = {"RESHAPE", "TRANSPOSE", "SHAPE", "QUANTIZE", "DEQUANTIZE", "STRIDED_SLICE"}


def profiler_attention() -> Answer:
    """The int8 attention block under LiteRT, op by op: a profiler hook on the interpreter,
    or its BATCH_MATMUL/SOFTMAX ops in a tf.profiler trace around invoke()."""
    cls, name = interpreter_class()
    hooks = sorted(m for m in dir(cls) if "profil" in m.lower())
    interp = cls(model_content=_converter(_attention(), _samples), num_threads=1)
    interp.allocate_tensors()
    detail = interp.get_input_details()[0]
    x = np.zeros(detail["shape"], detail["dtype"])
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            for _ in range(5):
                interp.set_tensor(detail["index"], x)
                interp.invoke()
        finally:
            tf.profiler.experimental.stop()
        events = _xplane_event_names(sorted(Path(logdir).glob("plugins/profile/*/*.xplane.pb")))
    seen = sorted(e for e in events if any(op in e.upper() for op in ("BATCH_MATMUL", "SOFTMAX")))
    if seen or hooks:
        return "yes", f"profiler hooks {hooks}; attention ops in a tf.profiler trace: {seen[:6]}"
    return "no", (
        f"{name}.Interpreter has no profiler hook and tf.profiler around invoke() recorded "
        f"no LiteRT op ({len(events)} event names): per-op times of the int8 attention "
        f"block need LiteRT's benchmark_model (--enable_op_profiling=true)"
    )


def _refusal(model: keras.Model) -> str | None:
    """tfmot's quantize_model's error for ``model`` (its first line), None if accepted."""
    import tensorflow_model_optimization as tfmot

    try:
        tfmot.quantization.keras.quantize_model(model)
    except (RuntimeError, ValueError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        return f"{type(exc).__name__}: {first}"
    return None


def _layer_norm_only() -> keras.Model:
    inputs = keras.Input((TOKENS, DIM), name="tokens")
    x = keras.layers.LayerNormalization(name="norm")(keras.layers.Dense(DIM, name="fc1")(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, name="fc2")(x))


def qat_transformer() -> Answer:
    """tfmot's quantize_model on LayerNorm alone, then on the whole attention block."""
    norm, block = _refusal(_layer_norm_only()), _refusal(_attention())
    if norm is None and block is None:
        return "yes", "tfmot quantize_model accepted LayerNormalization and the attention block"
    parts = [f"LayerNormalization: {norm}" if norm else "LayerNormalization: accepted"]
    parts.append(f"the attention block: {block}" if block else "the attention block: accepted")
    return "no", "tfmot quantize_model refuses " + "; ".join(parts)


PROBES = {
    "int8_attention_matmul": int8_attention_matmul,
    "int8_softmax": int8_softmax,
    "int8_layer_norm": int8_layer_norm,
    "profiler_attention": profiler_attention,
    "qat_transformer": qat_transformer,
}
