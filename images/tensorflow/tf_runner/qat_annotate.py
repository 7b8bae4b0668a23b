"""Which layers tfmot fake-quantizes for QAT (tensorflow.qat_flow), and how.

* "whole_model": ``quantize_model``, every layer tfmot supports.
* "dense_only": only the Dense and Conv2D layers annotated (``quantize_annotate_layer``),
  then ``quantize_apply``. tfmot quantizes a layer's weights and output, never its input:
  ``quantize_apply`` gives an unannotated layer that feeds an annotated one an output-only
  quantizer, but only where its registry quantizes that layer's output (not a LayerNorm
  it does not know, nor a Reshape it passes through). A Dense fed by one would have no
  input range and the converter would leave it in float, so each such producer gets
  ``OutputOnly`` here, its own math staying float.

The keep-float what-if passes the layers to leave unannotated (``keep_float``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Set
from typing import Any

import tensorflow_model_optimization as tfmot
import tf_keras as keras

from .vit_model import PositionEmbedding

qk = tfmot.quantization.keras
# The layers the "dense_only" flow annotates.
DENSE_ONLY_LAYERS = (keras.layers.Dense, keras.layers.Conv2D)


class OutputOnly(qk.QuantizeConfig):
    """Fake-quantizes a layer's output only (8-bit, per tensor, asymmetric: tfmot's
    default activation quantizer), its weights and math left float."""

    def get_weights_and_quantizers(self, layer: Any) -> list:
        return []

    def get_activations_and_quantizers(self, layer: Any) -> list:
        return []

    def set_quantize_weights(self, layer: Any, quantize_weights: list) -> None:
        pass

    def set_quantize_activations(self, layer: Any, quantize_activations: list) -> None:
        pass

    def get_output_quantizers(self, layer: Any) -> list:
        return [
            qk.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False
            )
        ]

    def get_config(self) -> dict[str, Any]:
        return {}


def _producers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    found = []
    for node in layer.inbound_nodes:
        inbound = node.inbound_layers
        found += inbound if isinstance(inbound, list) else [inbound]
    return found


def _is_tf_reshape(layer: keras.layers.Layer) -> bool:
    return type(layer).__name__ == "TFOpLambda" and "reshape" in str(getattr(layer, "symbol", ""))


def _unquantized_inputs(model: keras.Model, keep_float: Set[str]) -> set[str]:
    """The layers whose output feeds a Dense or Conv2D to be quantized and that tfmot
    would not give an output quantizer: a producer its registry does not quantize, or
    one behind a ``tf.reshape`` (the ViT flattens tokens for each Dense; tfmot cannot wrap
    a tf op, and the converter carries a range through a reshape unchanged)."""
    registry = qk.default_8bit.Default8BitQuantizeScheme().get_quantize_registry()

    def quantizes_output(layer: keras.layers.Layer) -> bool:
        if not registry.supports(layer):
            return False
        return bool(registry.get_quantize_config(layer).get_output_quantizers(layer))

    found = set()
    for layer in model.layers:
        if not isinstance(layer, DENSE_ONLY_LAYERS) or layer.name in keep_float:
            continue
        for producer in _producers(layer):
            source = producer
            while _is_tf_reshape(source):
                (source,) = _producers(source)
            if isinstance(source, (*DENSE_ONLY_LAYERS, keras.layers.InputLayer)):
                continue
            if source is not producer or not quantizes_output(source):
                found.add(source.name)
    return found


def unsupported_layers(model: keras.Model) -> str:
    """The layer classes tfmot's default 8-bit registry does not support, with counts
    ("LayerNormalization x5, TFOpLambda x4"); "" when it supports them all."""
    registry = qk.default_8bit.Default8BitQuantizeScheme().get_quantize_registry()
    counts = Counter(
        type(layer).__name__
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer) and not registry.supports(layer)
    )
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in sorted(counts.items()))


def fake_quantize(model: keras.Model, flow: str, keep_float: Set[str] = frozenset()) -> keras.Model:
    """``model`` made fake-quantized by tfmot as ``flow`` says, the layers named in
    ``keep_float`` left unannotated."""
    if flow == "whole_model" and not keep_float:
        return qk.quantize_model(model)
    feeding = _unquantized_inputs(model, keep_float) if flow == "dense_only" else set()

    def annotate(layer: keras.layers.Layer) -> keras.layers.Layer:
        # A fresh layer either way: clone_model's default would rebuild it from its config.
        fresh = layer.__class__.from_config(layer.get_config())
        if layer.name in keep_float:
            return fresh
        if flow == "whole_model" or isinstance(layer, DENSE_ONLY_LAYERS):
            return qk.quantize_annotate_layer(fresh)
        if layer.name in feeding:
            return qk.quantize_annotate_layer(fresh, OutputOnly())
        return fresh

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    # quantize_apply rebuilds the model from its config: custom classes must resolve.
    with qk.quantize_scope({"PositionEmbedding": PositionEmbedding, "OutputOnly": OutputOnly}):
        return qk.quantize_apply(annotated)
