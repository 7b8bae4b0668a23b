"""Per-layer quantization error of the TensorFlow int8 models (harness_contract.layers.analysis).

fp32: one Keras model whose outputs are each canonical layer's output (layer names are
the canonical names with '.' -> '_').
int8 (propagated): the .tflite run end to end in LiteRT's interpreter with
``experimental_preserve_all_tensors=True``; each CONV_2D / FULLY_CONNECTED op's output
tensor (int8, dequantized with its own scale and zero point) is the layer's int8 output.
Ops are mapped to canonical layers by the Keras layer names TFLite keeps in tensor names.
Block outputs: each residual block's ADD (ReLU fused) output tensor, mapped by its Keras
layer names (``stages_0_0_relu2``, ``stages_0_0_add``); a ViT block's second residual ADD
(``blocks_0_add2``). A ViT Dense runs on the tokens flattened to (batch * tokens,
features), in Keras as in TFLite: its outputs are compared in that shape.
Own error: measured directly, each layer's fp32 Keras layer run on the int8 op's own
(dequantized) input; or from ``tf.lite.experimental.QuantizationDebugger`` (PTQ with
``debugger=True``), whose NumericVerify ops give the same figure. Its split: the same
input through the op with TFLite's own int8 weights and bias, dequantized, in float
(weight rounding against the Keras weights; output rounding against the int8 output).
Keep-float PTQ: the debugger's ``denylisted_nodes`` (selective quantization); QAT: tfmot
annotates as tensorflow.qat_flow says but never the float ones, the same fine-tuning, the
same conversion.
Either way the float op reads the dequantized int8 activation.
QAT reference: the tfmot model's wrapped (fine-tuned) layers' weights in an fp32 clone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from harness_contract.failures import reason_of
from harness_contract.layers.analysis import (
    AnalysisUnavailable,
    Int8Outputs,
    LayerProbe,
    OwnErrors,
    RequantizeInputs,
)
from harness_contract.layers.error import CanonicalLayer, measuring_points
from harness_contract.model.architecture import ResNetDef

from . import quant_debugger, quantize
from .litert import TFLiteModel as Int8Model
from .litert import interpreter_class, quantize_input
from .model import layer_name
from .quant_debugger import DEBUGGER
from .quantize import PTQ_FLOW

Pair = tuple[np.ndarray, np.ndarray]

log = logging.getLogger("harness.tf_runner")

_WEIGHTED_OPS = ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D")
_BLOCK_OPS = ("ADD", "RELU")  # a block's output: its ADD, or a RELU after it where unfused
OWN_DIRECT = (
    "the layer's fp32 Keras layer run on the int8 op's own dequantized input "
    "(preserved LiteRT tensors)"
)


# The Keras layers that end a block, by its measuring point's output: a ResNet block ends
# in the ReLU after its add (TFLite fuses it into the ADD: either name may carry it), a
# ViT block in its second residual add.
_BLOCK_ENDS = {"relu": ("_relu2", "_add"), "raw": ("_add2",)}


def output_point(layer: CanonicalLayer) -> str:
    """The Keras layer whose output is the canonical layer's compared output."""
    if layer.kind == "block":
        return layer_name(layer.name.removesuffix(".out")) + _BLOCK_ENDS[layer.output][0]
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


def _dequantize_param(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """A weight or bias tensor dequantized per channel (along its quantized dimension)."""
    if values.dtype == np.float32:
        return values
    params = detail["quantization_parameters"]
    shape = [1] * values.ndim
    shape[params["quantized_dimension"]] = -1
    scales = params["scales"].astype(np.float32).reshape(shape)
    zero_points = params["zero_points"].astype(np.float32).reshape(shape)
    return (values.astype(np.float32) - zero_points) * scales


class TFLayerProbe(LayerProbe):
    def __init__(self, fw: Any, debugger: bool = False) -> None:  # a set-up TFFramework
        self.fw = fw
        self.debugger = debugger  # PTQ own error from the QuantizationDebugger (slower)
        self.layers = measuring_points(fw.net)
        # tfmot renames each wrapped layer "quant_<name>" in the QAT model.
        prefixes = ("", "quant_")
        self.by_keras = {
            prefix + layer_name(x.name): x.name
            for x in self.layers
            if x.kind != "block"
            for prefix in prefixes
        }
        self.blocks_by_keras = {
            prefix + layer_name(x.name.removesuffix(".out")) + suffix: x.name
            for x in self.layers
            if x.kind == "block"
            for prefix in prefixes
            for suffix in _BLOCK_ENDS[x.output]
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
            if op["op_name"] in _BLOCK_OPS:  # the later op (a RELU after the ADD) wins
                out = op["outputs"][0]
                block = _canonical_in([details[out]["name"]], self.blocks_by_keras)
                if block is not None:
                    index[block], names[block] = out, details[out]["name"]
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
        interp.set_tensor(detail["index"], quantize_input(self.fw.normalize.numpy(images), detail))
        interp.invoke()
        index, names, unmapped = self._map(interp)
        self._tensors[qmodel.flow] = names
        tensors = {t["index"]: t for t in interp.get_tensor_details()}
        outputs = {name: _dequantize(interp.get_tensor(i), tensors[i]) for name, i in index.items()}
        # Own error measured directly: the same figure as the QuantizationDebugger's (which
        # needs a Keras model the QAT variant no longer has, and a second calibration).
        own, weight, output = self._own_direct(interp, index, tensors, fp32, outputs)
        return Int8Outputs(
            outputs=outputs,
            own=own,
            weight=weight,
            output=output,
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
    ) -> tuple[dict[str, Pair], dict[str, Pair], dict[str, Pair]]:
        """Per weighted layer, on the op's own (dequantized) int8 input: own (fp32 Keras
        layers vs the int8 output), weight (fp32 Keras layers vs the op with TFLite's
        dequantized int8 weights and bias, in float) and output (that float op vs the
        int8 output) pairs."""
        producers = {
            op["outputs"][0]: op
            for op in interp._get_ops_details()
            if op["op_name"] in _WEIGHTED_OPS
        }
        net = self.fw.net
        bn = {c.name for c in net.convs() if c.bn} if isinstance(net, ResNetDef) else set()
        own, weight, output = {}, {}, {}
        for layer in self.layers:
            if layer.name not in index or layer.kind == "block":
                continue
            op = producers[index[layer.name]]
            x_index = op["inputs"][0]
            x = tf.constant(_dequantize(interp.get_tensor(x_index), tensors[x_index]))
            name = layer_name(layer.name)
            weighted = fp32.get_layer(name)
            if layer.kind == "conv" and tuple(x.shape[1:3]) != tuple(weighted.input_shape[1:3]):
                x = fp32.get_layer(f"{name}_pad")(x)  # TFLite fused the padding into the conv
            y = weighted(x)
            if layer.name in bn:
                y = fp32.get_layer(f"{name}_bn")(y, training=False)
            y_w = self._with_int8_params(interp, op, tensors, weighted, x)
            if layer.output == "relu":
                y, y_w = tf.nn.relu(y), tf.nn.relu(y_w)
            f, f_w = y.numpy(), y_w.numpy()
            own[layer.name] = (f, outputs[layer.name])
            weight[layer.name] = (f, f_w)
            output[layer.name] = (f_w, outputs[layer.name])
        return own, weight, output

    @staticmethod
    def _with_int8_params(
        interp: Any,
        op: dict[str, Any],
        tensors: dict[int, dict[str, Any]],
        weighted: keras.layers.Layer,
        x: tf.Tensor,
    ) -> tf.Tensor:
        """The op in float with TFLite's own int8 weights and bias (BatchNorm folded in)."""
        w_index, *rest = op["inputs"][1:]
        kernel = _dequantize_param(interp.get_tensor(w_index), tensors[w_index])
        if op["op_name"] == "FULLY_CONNECTED":  # (out, in)
            y = tf.matmul(tf.reshape(x, [x.shape[0], -1]), kernel.T)
        else:  # CONV_2D: OHWI -> HWIO, padding already explicit in x
            y = tf.nn.conv2d(x, kernel.transpose(1, 2, 3, 0), weighted.strides, "VALID")
        if rest and rest[0] >= 0:
            y = y + _dequantize_param(interp.get_tensor(rest[0]), tensors[rest[0]])
        return y

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
        try:
            stats = quant_debugger.layer_statistics(self.fw.normalize, fp32, images, calibration)
        except Exception as exc:  # the debugger's own failure is this figure's only
            log.warning("%s failed on ptq: %s", DEBUGGER, exc)
            return OwnErrors({}, f"not given: {DEBUGGER} failed: {reason_of(exc)}")
        # The model's output: the last dense layer (the ResNet's fc, the ViT's head).
        dense = [x.name for x in self.layers if x.kind == "dense"][-1]
        return quant_debugger.own_errors(
            stats, lambda tensor: _canonical_in([tensor], self.by_keras), dense
        )

    # ------------------------------------------------------------ QAT reference
    def qat_float_model(self, trained: keras.Model, fp32: keras.Model) -> keras.Model:
        """An fp32 clone holding the fine-tuned weights of the tfmot model, matched by
        variable name (``stages_0_0_conv2/kernel:0``): a wrapper tracks some kernels
        itself, so the wrapped layer's own weight list can lack them."""
        trained_vars = {v.name: v for v in trained.weights}
        with tf.device(self.fw.device):
            clone = keras.models.clone_model(fp32)
        for layer in clone.layers:
            missing = [v.name for v in layer.weights if v.name not in trained_vars]
            if missing:
                raise AnalysisUnavailable(f"the QAT model has no weights {missing}")
            if layer.weights:
                layer.set_weights([trained_vars[v.name].numpy() for v in layer.weights])
        return clone

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
            debugger = quant_debugger.make_debugger(
                self.fw.normalize,
                fp32,
                inputs.calibration,
                np.zeros((1, 32, 32, 3), np.float32),
                denylisted_nodes=[names[x] for x in float_layers],
                fully_quantize=True,
            )
            blob = debugger.get_nondebug_quantized_model()
            return Int8Model(blob, f"{PTQ_FLOW}+float", params, self.fw.threads)
        flow = self.fw.spec.tensorflow.qat_flow
        prepared = self._qat_keeping_float(fp32, {layer_name(x) for x in float_layers}, flow)
        tuned, _ = inputs.fine_tune(prepared)
        model, _ = quantize.convert_qat(tuned, params, self.fw.threads, flow)
        model.flow = f"{model.flow}+float"
        return model

    def _qat_keeping_float(
        self, fp32: keras.Model, keep: set[str], flow: quantize.QatFlow = "whole_model"
    ) -> keras.Model:
        """tfmot annotates as ``flow`` does, but never the layers in ``keep``."""
        from .qat_annotate import fake_quantize  # imports tfmot

        with tf.device(self.fw.device):
            clone = keras.models.clone_model(fp32)
            clone.set_weights(fp32.get_weights())
            return fake_quantize(clone, flow, keep)
