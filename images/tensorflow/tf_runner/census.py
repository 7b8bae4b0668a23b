"""The op census (harness_contract.metrics.census) of what TensorFlow made of a model:
a .tflite's operators, or a Keras model's layers.

.tflite: every builtin operator, read from an interpreter before it allocates tensors (so
the model's own ops, not the XNNPACK delegate that replaces them), by family; an op is
int8 when its first input is an int8/int16 (quantized) tensor. Data movement (quantize
boundaries, reshapes, transposes, slices) and shape arithmetic on int32 tensors are left
out. TFLite has no LayerNorm op: the converter decomposes each LayerNormalization into
MEAN, SQUARED_DIFFERENCE, ADD, RSQRT, MUL, SUB, whose tensor names keep the Keras layer's
name; those ops are counted as one "layer_norm" per layer, int8 only when all of them are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
import tf_keras as keras

from harness_contract.metrics.census import OpCensus, OpFamily, count_ops
from harness_contract.model.network import Network
from harness_contract.model.vit import ViTDef

from .litert import interpreter_class
from .names import layer_name

TFLITE_SOURCE = (
    ".tflite operators (first input int8/int16: int8; each LayerNormalization's decomposed "
    "MEAN/SQUARED_DIFFERENCE/RSQRT/MUL/SUB/ADD ops, found by its layer name in their "
    "tensor names, counted as one layer_norm)"
)
KERAS_SOURCE = "Keras layers (fp32: every op float)"

_TFLITE_FAMILIES: dict[str, OpFamily] = {
    "CONV_2D": "conv",
    "DEPTHWISE_CONV_2D": "conv",
    "FULLY_CONNECTED": "linear",
    "BATCH_MATMUL": "matmul",
    "SOFTMAX": "softmax",
    "GELU": "gelu",
    "RELU": "relu",
    "RELU6": "relu",
    "ADD": "add",
    "MEAN": "mean",
}
# Ops that move or re-type data without computing on it.
_DATA_MOVEMENT = frozenset(
    {
        "QUANTIZE",
        "DEQUANTIZE",
        "RESHAPE",
        "TRANSPOSE",
        "SHAPE",
        "STRIDED_SLICE",
        "SLICE",
        "GATHER",
        "PACK",
        "UNPACK",
        "CONCATENATION",
        "SPLIT",
        "SPLIT_V",
        "SQUEEZE",
        "EXPAND_DIMS",
        "PAD",
        "PADV2",
        "BROADCAST_TO",
        "CAST",
    }
)
_QUANTIZED = (np.int8, np.uint8, np.int16)
_SHAPE_DTYPES = (np.int32, np.int64)


def _norm_layers(net: Network | None) -> set[str]:
    """The LayerNormalization layers' names, and tfmot's for them wrapped ("quant_norm")."""
    if not isinstance(net, ViTDef):
        return set()
    return {prefix + layer_name(n) for n in net.norms() for prefix in ("", "quant_")}


def _owner(names: Iterable[str], norms: set[str]) -> str | None:
    """The LayerNormalization layer a tensor belongs to: its name has a path segment that
    is the layer's name ("cifar_vit/blocks_0_norm1/moments/mean")."""
    for name in names:
        for part in name.split(";"):
            for segment in part.split("/"):
                if segment in norms:
                    return segment
    return None


def tflite_ops(blob: bytes) -> list[tuple[str, Any, str]]:
    """(op name, its first input's dtype or None, its first output's tensor name) per op."""
    cls, _ = interpreter_class()
    interp = cls(model_content=blob)
    details = {t["index"]: t for t in interp.get_tensor_details()}
    out = []
    for op in interp._get_ops_details():  # no public op listing
        inputs = [i for i in op["inputs"] if i >= 0]
        dtype = details[inputs[0]]["dtype"] if inputs and inputs[0] in details else None
        outputs = [details[i]["name"] for i in op["outputs"] if i in details]
        out.append((op["op_name"], dtype, outputs[0] if outputs else ""))
    return out


def tflite_census(blob: bytes, net: Network | None = None) -> OpCensus:
    norms = _norm_layers(net)
    counted: list[tuple[OpFamily, bool, str]] = []
    norm_int8: dict[str, bool] = defaultdict(lambda: True)
    for name, dtype, output in tflite_ops(blob):
        if name in _DATA_MOVEMENT or (dtype is not None and dtype in _SHAPE_DTYPES):
            continue
        is_int8 = dtype is not None and dtype in _QUANTIZED
        owner = _owner([output], norms)
        if owner is not None:
            norm_int8[owner] &= is_int8
            continue
        counted.append((_TFLITE_FAMILIES.get(name, "other"), is_int8, name))
    counted += [("layer_norm", is_int8, "LayerNormalization") for is_int8 in norm_int8.values()]
    return count_ops(TFLITE_SOURCE, counted)


def _keras_family(layer: keras.layers.Layer) -> OpFamily | None:
    """A Keras layer's family; None for layers that only move data (input, reshape,
    permute, slice, padding)."""
    from .vit_model import PositionEmbedding

    if isinstance(layer, keras.layers.Conv2D):
        return "conv"
    if isinstance(layer, keras.layers.Dense):
        return "linear"
    if isinstance(layer, keras.layers.LayerNormalization):
        return "layer_norm"
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, keras.layers.ReLU):
        return "relu"
    if isinstance(layer, (keras.layers.Add, PositionEmbedding)):  # the table is added
        return "add"
    pooling = (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D)
    if isinstance(layer, pooling):
        return "mean"
    if isinstance(layer, keras.layers.Activation):
        activation = getattr(layer.activation, "__name__", "")
        return {"gelu": "gelu", "relu": "relu"}.get(activation, "other")
    if isinstance(
        layer,
        (
            keras.layers.InputLayer,
            keras.layers.Reshape,
            keras.layers.Permute,
            keras.layers.ZeroPadding2D,
            keras.layers.Flatten,
        ),
    ):
        return None
    if type(layer).__name__ == "SlicingOpLambda":
        return None
    if type(layer).__name__ == "TFOpLambda":  # tf.matmul, tf.math.multiply, tf.reshape
        if "reshape" in _op_name(layer):
            return None
        return "matmul" if "matmul" in _op_name(layer) else "other"
    return "other"


def _op_name(layer: keras.layers.Layer) -> str:
    """The layer's class, or for a tf function in the graph its symbol ("linalg.matmul")."""
    symbol = getattr(layer, "symbol", None)
    return f"tf.{symbol}" if symbol else type(layer).__name__


def keras_census(model: keras.Model) -> OpCensus:
    counted = []
    for layer in model.layers:
        family = _keras_family(layer)
        if family is not None:
            counted.append((family, False, _op_name(layer)))
    return count_ops(KERAS_SOURCE, counted)
