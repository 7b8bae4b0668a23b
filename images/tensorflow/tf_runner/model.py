"""The spec's network (the CIFAR ResNet18 or the small ViT) as a functional tf_keras
model, built from the shared architecture table.

Layer names are the canonical names with '.' replaced by '_' (``stages_1_0_conv1``,
its BatchNorm ``stages_1_0_conv1_bn``; ``blocks_0_attn_qkv``), so canonical weights map
onto layers by name. The ResNet stays plain (Conv2D, BatchNormalization, ReLU, Add
layers) because that is what ``tfmot.quantization.keras.quantize_model`` accepts; the
ViT is built in ``vit_model`` from Dense, LayerNormalization and tf ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tf_keras as keras

from harness_contract.model.architecture import BlockDef, ConvDef, ResNetDef
from harness_contract.model.network import Network
from harness_contract.model.vit import ViTDef

from . import vit_model
from .names import layer_name

# PyTorch's BatchNorm2d defaults: eps 1e-5, running stats updated with 0.1 of the batch
# (Keras' momentum is the share kept: 1 - 0.1).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9

KTensor = Any  # tf_keras' symbolic KerasTensor, which it does not export publicly
# Kernel initializers. Canonical weights overwrite every kernel, so then zeros (which cost
# nothing to draw and make a layer that was missed obvious); without them, Keras' own
# default (glorot-uniform kernels; biases and BatchNorm keep their defaults: zero biases,
# unit scale), the framework-default start of model.init = "framework".
LOADED_INIT = "zeros"
KERAS_DEFAULT_INIT = "glorot_uniform"


def _conv(c: ConvDef, x: KTensor, init: str) -> KTensor:
    name = layer_name(c.name)
    if c.kernel > 1:
        # Keras' padding="same" pads a stride-2 conv only at the bottom/right; PyTorch pads
        # kernel // 2 on every side. Explicit zero padding + "valid" matches PyTorch exactly.
        x = keras.layers.ZeroPadding2D(c.kernel // 2, name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(
        c.out_ch,
        c.kernel,
        c.stride,
        padding="valid",
        use_bias=c.bias,
        kernel_initializer=init,
        name=name,
    )(x)
    if c.bn:
        x = keras.layers.BatchNormalization(
            epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn"
        )(x)
    return x


def _block(b: BlockDef, x: KTensor, init: str) -> KTensor:
    name = layer_name(b.name)
    out = keras.layers.ReLU(name=f"{name}_relu1")(_conv(b.conv1, x, init))
    out = _conv(b.conv2, out, init)
    shortcut = _conv(b.shortcut, x, init) if b.shortcut is not None else x
    out = keras.layers.Add(name=f"{name}_add")([out, shortcut])
    return keras.layers.ReLU(name=f"{name}_relu2")(out)


def build_graph(net: ResNetDef, init: str = LOADED_INIT) -> keras.Model:
    """The model's layers, NHWC float input (normalized outside the model, as in PyTorch),
    every conv and dense kernel drawn by ``init``."""
    inputs = keras.Input((32, 32, 3), name="images")
    x = keras.layers.ReLU(name="stem_relu")(_conv(net.stem, inputs, init))
    for b in net.blocks:
        x = _block(b, x, init)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(net.num_classes, kernel_initializer=init, name="fc")(x)
    return keras.Model(inputs, logits, name="cifar_resnet18")


def canonical_to_keras(
    net: ResNetDef, weights: dict[str, np.ndarray]
) -> dict[str, list[np.ndarray]]:
    """Layer name -> that layer's weights in Keras order and layout (HWIO, (in, out))."""
    out: dict[str, list[np.ndarray]] = {}
    for c in net.convs():
        kernel = weights[f"{c.name}.weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
        out[layer_name(c.name)] = [kernel] + ([weights[f"{c.name}.bias"]] if c.bias else [])
        if c.bn:
            bn = f"{c.name}_bn"
            out[layer_name(bn)] = [
                weights[f"{bn}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")
            ]
    out["fc"] = [weights["fc.weight"].T, weights["fc.bias"]]
    return out


def keras_to_canonical(model: keras.Model, net: Network) -> dict[str, np.ndarray]:
    """The inverse of ``canonical_to_keras``: the model's weights under their canonical
    names and layouts (conv OIHW, dense (out, in)), as harness_contract.model.weights makes them."""
    if isinstance(net, ViTDef):
        return vit_model.keras_to_canonical(model, net)
    out: dict[str, np.ndarray] = {}

    def tensors(name: str) -> list[np.ndarray]:
        return [np.asarray(w) for w in model.get_layer(layer_name(name)).get_weights()]

    for c in net.convs():
        kernel, *bias = tensors(c.name)
        out[f"{c.name}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))  # HWIO->OIHW
        if c.bias:
            out[f"{c.name}.bias"] = bias[0]
        if c.bn:
            bn = f"{c.name}_bn"
            for key, value in zip(
                ("weight", "bias", "running_mean", "running_var"), tensors(bn), strict=True
            ):
                out[f"{bn}.{key}"] = value
    kernel, bias = tensors("fc")
    out["fc.weight"], out["fc.bias"] = np.ascontiguousarray(kernel.T), bias
    return out


def load_canonical(model: keras.Model, net: Network, weights: dict[str, np.ndarray]) -> None:
    if isinstance(net, ViTDef):
        by_layer = vit_model.canonical_to_keras(net, weights)
    else:
        by_layer = canonical_to_keras(net, weights)
    with_weights = {layer.name for layer in model.layers if layer.weights}
    if set(by_layer) != with_weights:
        raise AssertionError(
            f"weights do not fit the model: missing "
            f"{sorted(with_weights - set(by_layer))}, "
            f"extra {sorted(set(by_layer) - with_weights)}"
        )
    for name, tensors in by_layer.items():
        model.get_layer(name).set_weights([np.ascontiguousarray(t) for t in tensors])


def trainable_parameters(model: keras.Model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def build_model(net: Network, weights: dict[str, np.ndarray] | None) -> keras.Model:
    """The model from canonical weights, or with Keras' default initializers (None)."""
    init = KERAS_DEFAULT_INIT if weights is None else LOADED_INIT
    model = vit_model.build_graph(net, init) if isinstance(net, ViTDef) else build_graph(net, init)
    if weights is not None:
        load_canonical(model, net, weights)
    count = trainable_parameters(model)
    if count != net.parameter_count():
        raise AssertionError(
            f"model has {count} parameters, the table says {net.parameter_count()}"
        )
    return model
