"""Per-layer quantization error of the TensorFlow int8 models (harness_contract.analysis).

fp32: one Keras model whose outputs are each canonical layer's output (layer names are
the canonical names with '.' -> '_').
int8 (propagated): the .tflite run end to end in LiteRT's interpreter with
``experimental_preserve_all_tensors=True``; each CONV_2D / FULLY_CONNECTED op's output
tensor (int8, dequantized with its own scale and zero point) is the layer's int8 output.
Ops are mapped to canonical layers by the Keras layer names TFLite keeps in tensor names.
Own error: ``tf.lite.experimental.QuantizationDebugger`` on a converter set up as the
PTQ phase's (or the QAT model's) with the shared calibration images; its NumericVerify
ops give each layer's int8 output against its float op on the same input.
Keep-float PTQ: the debugger's ``denylisted_nodes`` (selective quantization); QAT: tfmot
annotates every layer but the float ones, the same fine-tuning, the same conversion.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from harness_contract.analysis import (
    AnalysisUnavailable,
    Int8Outputs,
    LayerProbe,
    OwnErrors,
    RequantizeInputs,
)
from harness_contract.failures import reason_of
from harness_contract.layer_error import CanonicalLayer, canonical_layers

from . import quantize
from .model import layer_name
from .quantize import PTQ_FLOW, QAT_FLOW, interpreter_class
from .quantize import TFLiteModel as Int8Model

log = logging.getLogger("harness.tf_runner")

_WEIGHTED_OPS = ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D")
DEBUGGER = "tf.lite.experimental.QuantizationDebugger"
OWN_DIRECT = (
    "the layer's fp32 Keras layer run on the int8 op's own dequantized input "
    "(preserved LiteRT tensors)"
)


def output_point(layer: CanonicalLayer) -> str:
    """The Keras layer whose output is the canonical layer's compared output."""
    if layer.output == "relu":
        if layer.name == "stem":
            return "stem_relu"
        return layer_name(layer.name.rsplit(".", 1)[0]) + "_relu1"
    if layer.output == "bn":
        return layer_name(f"{layer.name}_bn")
    return layer_name(layer.name)


def _canonical_in(names: Sequence[str], by_keras: dict[str, str]) -> str | None:
    """The canonical layer a TFLite tensor name belongs to ("model/stem_relu/Relu;
    model/stem/Conv2D;..." -> "stem"): the first Keras conv/dense name among its parts."""
    for name in names:
        for part in name.split(";"):
            for segment in part.split("/"):
                if segment in by_keras:
                    return by_keras[segment]
    return None


def _dequantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    if values.dtype == np.float32:  # a layer left in float
        return values
    scale, zero_point = detail["quantization"]
    return (values.astype(np.float32) - zero_point) * np.float32(scale)


class TFLayerProbe(LayerProbe):
    def __init__(self, fw: Any, debugger: bool = False) -> None:  # a set-up TFFramework
        self.fw = fw
        self.debugger = debugger  # PTQ own error from the QuantizationDebugger (slower)
        self.layers = canonical_layers(fw.net)
        # tfmot renames each wrapped layer "quant_<name>" in the QAT model.
        self.by_keras = {
            prefix + layer_name(x.name): x.name for x in self.layers for prefix in ("", "quant_")
        }
        self._taps: dict[int, tuple[keras.Model, keras.Model]] = {}
        self._interpreters: dict[tuple[int, int], tuple[Int8Model, Any]] = {}
        self._tensors: dict[str, dict[str, str]] = {}  # flow -> canonical -> tensor name

    # ------------------------------------------------------------ fp32
    def fp32_layer_outputs(self, fp32: keras.Model, images: np.ndarray) -> dict[str, np.ndarray]:
        if id(fp32) not in self._taps:
            outputs = [fp32.get_layer(output_point(x)).output for x in self.layers]
            self._taps[id(fp32)] = (fp32, keras.Model(fp32.input, outputs))
        tap = self._taps[id(fp32)][1]
        with tf.device(self.fw.device):
            values = tap(self.fw.normalize(images, self.fw.device), training=False)
        return {x.name: v.numpy() for x, v in zip(self.layers, values, strict=True)}

    # ------------------------------------------------------------ int8
    def _interpreter(self, qmodel: Int8Model, batch: int) -> Any:
        key = (id(qmodel), batch)
        if key not in self._interpreters:
            cls, _ = interpreter_class()
            interp = cls(
                model_content=qmodel.tflite,
                num_threads=self.fw.threads,
                experimental_preserve_all_tensors=True,
            )
            interp.resize_tensor_input(interp.get_input_details()[0]["index"], [batch, 32, 32, 3])
            interp.allocate_tensors()
            self._interpreters[key] = (qmodel, interp)
        return self._interpreters[key][1]

    def _map(self, interp: Any) -> tuple[dict[str, int], dict[str, str], list[str]]:
        """canonical -> output tensor index and name; the conv/dense ops no layer took."""
        details = {t["index"]: t for t in interp.get_tensor_details()}
        index, names, unmapped = {}, {}, []
        for op in interp._get_ops_details():  # no public op listing
            if op["op_name"] not in _WEIGHTED_OPS:
                continue
            out = op["outputs"][0]
            out_name = details[out]["name"]
            # The output's name first; a name like "Identity" says nothing, so then the
            # op's own weight and bias tensors (never its input: that is another layer's).
            params = [details[i]["name"] for i in op["inputs"][1:] if i in details]
            canonical = _canonical_in([out_name], self.by_keras) or _canonical_in(
                params, self.by_keras
            )
            if canonical is None:
                unmapped.append(out_name)
            else:
                index[canonical], names[canonical] = out, out_name
        return index, names, unmapped

    def int8_layer_outputs(
        self, qmodel: Int8Model, fp32: keras.Model, images: np.ndarray
    ) -> Int8Outputs:
        interp = self._interpreter(qmodel, len(images))
        detail = interp.get_input_details()[0]
        interp.set_tensor(
            detail["index"], quantize._quantize(self.fw.normalize.numpy(images), detail)
        )
        interp.invoke()
        index, names, unmapped = self._map(interp)
        self._tensors[qmodel.flow] = names
        tensors = {t["index"]: t for t in interp.get_tensor_details()}
        outputs = {name: _dequantize(interp.get_tensor(i), tensors[i]) for name, i in index.items()}
        # Own error measured directly: the same figure as the QuantizationDebugger's (which
        # needs a Keras model the QAT variant no longer has, and a second calibration).
        own = self._own_direct(interp, index, tensors, fp32, outputs)
        return Int8Outputs(
            outputs=outputs,
            own=own,
            tool_names=names,
            output_quantized={
                name: np.dtype(tensors[i]["dtype"]) in (np.int8, np.uint8, np.int16)
                for name, i in index.items()
            },
            unmapped=unmapped,
            method=(
                "LiteRT interpreter with experimental_preserve_all_tensors=True "
                "(each conv/dense op's int8 output dequantized with its scale and zero point)"
            ),
            own_method=OWN_DIRECT,
        )

    def _own_direct(
        self,
        interp: Any,
        index: dict[str, int],
        tensors: dict[int, dict[str, Any]],
        fp32: keras.Model,
        outputs: dict[str, np.ndarray],
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each layer's fp32 Keras layers run on the op's own (dequantized) int8 input."""
        producers = {
            op["outputs"][0]: op
            for op in interp._get_ops_details()
            if op["op_name"] in _WEIGHTED_OPS
        }
        bn = {c.name for c in self.fw.net.convs() if c.bn}
        own = {}
        for layer in self.layers:
            if layer.name not in index:
                continue
            x_index = producers[index[layer.name]]["inputs"][0]
            x = tf.constant(_dequantize(interp.get_tensor(x_index), tensors[x_index]))
            name = layer_name(layer.name)
            weighted = fp32.get_layer(name)
            if layer.kind == "conv" and tuple(x.shape[1:3]) != tuple(weighted.input_shape[1:3]):
                x = fp32.get_layer(f"{name}_pad")(x)  # TFLite fused the padding into the conv
            y = weighted(x)
            if layer.name in bn:
                y = fp32.get_layer(f"{name}_bn")(y, training=False)
            if layer.output == "relu":
                y = tf.nn.relu(y)
            own[layer.name] = (y.numpy(), outputs[layer.name])
        return own

    def own_layer_error(
        self,
        variant: str,
        qmodel: Int8Model,
        fp32: keras.Model,
        images: np.ndarray,
        inputs: RequantizeInputs,
    ) -> OwnErrors | None:
        """PTQ with ``debugger=True``: the QuantizationDebugger's own error (it calibrates
        and converts the model again, about 1.5x the PTQ phase); otherwise None and the
        direct figures stand (equal to the debugger's, tests/test_layers_tf.py)."""
        if variant != "ptq" or not self.debugger:
            return None
        return self.debugger_own_error(fp32, images, inputs.calibration)

    def debugger_own_error(
        self, fp32: keras.Model, images: np.ndarray, calibration: Sequence[np.ndarray]
    ) -> OwnErrors:
        """Own error per layer from the QuantizationDebugger on a converter set up as the
        PTQ phase's, calibrated on the same images."""
        variant = "ptq"
        try:
            stats = self._debugger_stats(fp32, images, calibration)
        except Exception as exc:  # the debugger's own failure is this figure's only
            log.warning("%s failed on %s: %s", DEBUGGER, variant, exc)
            return OwnErrors({}, f"not given: {DEBUGGER} failed: {reason_of(exc)}")
        figures = {}
        for tensor, row in stats.items():
            canonical = _canonical_in([tensor], self.by_keras)
            if canonical is None and tensor.startswith("NumericVerify/Identity"):
                # The model's output tensor keeps no layer name: it is the dense layer's.
                canonical = self.layers[-1].name
            if canonical is None:
                continue  # add, pad, pool: not a conv or dense layer
            noise, signal, n = row["noise"], row["signal"], row["n"]
            sqnr = float(10 * np.log10(signal / noise)) if signal > 0 and noise > 0 else None
            figures[canonical] = (sqnr, noise / n)
        return OwnErrors(figures, f"{DEBUGGER} (NumericVerify: int8 op vs float op, same input)")

    def _debugger(self, model: keras.Model, calibration: Sequence[np.ndarray], **options: Any):
        converter = quantize._full_int8(quantize._converter(model), calibrated=False)
        batches = [self.fw.normalize.numpy(b) for b in calibration]
        converter.representative_dataset = lambda: ([b] for b in batches)
        return tf.lite.experimental.QuantizationDebugger(
            converter=converter,
            debug_options=tf.lite.experimental.QuantizationDebugOptions(**options),
            debug_dataset=self._debug_batches,
        )

    def _debug_batches(self) -> Iterator[list[np.ndarray]]:
        """The debug images in equal batches (the debugger sizes its interpreter once, from
        the first): the largest divisor of their count up to 64, so no image is left out."""
        images = self._debug_images
        size = max(d for d in range(1, 65) if len(images) % d == 0)
        for start in range(0, len(images), size):
            yield [images[start : start + size]]

    def _debugger_stats(
        self, model: keras.Model, images: np.ndarray, calibration: Sequence[np.ndarray]
    ) -> dict[str, dict[str, float]]:
        """Per NumericVerify tensor: mean noise and signal energy and element count per
        image (their ratio is the pooled SQNR, noise / n the MSE)."""
        self._debug_images = self.fw.normalize.numpy(images)

        def dequantized(q: Sequence[np.ndarray], scale: float, zp: int) -> list[np.ndarray]:
            return [(np.asarray(x, np.float64) - zp) * scale for x in q]

        metrics = {
            "signal": lambda f, q, s, z: float(
                sum(np.sum(np.square(x, dtype=np.float64)) for x in f)
            ),
            "noise": lambda f, q, s, z: float(
                sum(np.sum(np.square(a - b)) for a, b in zip(f, dequantized(q, s, z), strict=True))
            ),
            "n": lambda f, q, s, z: float(sum(np.size(x) for x in f)),
        }
        debugger = self._debugger(model, calibration, layer_direct_compare_metrics=metrics)
        debugger.run()
        return {name: dict(row) for name, row in debugger.layer_statistics.items()}

    # ------------------------------------------------------------ keep float
    def requantize_keeping_float(
        self,
        variant: str,
        fp32: keras.Model,
        float_layers: Sequence[str],
        inputs: RequantizeInputs,
    ) -> Int8Model:
        params = self.fw.net.parameter_count()
        if variant == "ptq":
            names = self._tensors.get(PTQ_FLOW, {})
            missing = [x for x in float_layers if x not in names]
            if missing:
                raise AnalysisUnavailable(f"no TFLite tensor name known for {missing}")
            self._debug_images = np.zeros((1, 32, 32, 3), np.float32)
            debugger = self._debugger(
                fp32,
                inputs.calibration,
                denylisted_nodes=[names[x] for x in float_layers],
                fully_quantize=True,
            )
            blob = debugger.get_nondebug_quantized_model()
            return Int8Model(blob, f"{PTQ_FLOW}+float", params, self.fw.threads)
        prepared = self._qat_keeping_float(fp32, {layer_name(x) for x in float_layers})
        tuned, _ = inputs.fine_tune(prepared)
        model, _ = quantize.convert_qat(tuned, params, self.fw.threads)
        model.flow = f"{QAT_FLOW}+float"
        return model

    def _qat_keeping_float(self, fp32: keras.Model, keep: set[str]) -> keras.Model:
        import tensorflow_model_optimization as tfmot

        qk = tfmot.quantization.keras
        with tf.device(self.fw.device):
            clone = keras.models.clone_model(fp32)
            clone.set_weights(fp32.get_weights())

            def annotate(layer: keras.layers.Layer) -> keras.layers.Layer:
                return layer if layer.name in keep else qk.quantize_annotate_layer(layer)

            annotated = keras.models.clone_model(clone, clone_function=annotate)
            annotated.set_weights(clone.get_weights())
            return qk.quantize_apply(annotated)
