"""The small ViT (harness_contract.model.vit) as a functional tf_keras model.

Layer names are the canonical names with '.' replaced by '_' (``blocks_0_attn_qkv``).
Attention is written out as PyTorch's model writes it: Dense qkv, a reshape into heads,
``tf.matmul`` of q and k, Softmax, ``tf.matmul`` with v, Dense proj. The position
embedding is a layer of its own (``PositionEmbedding``), the one layer Keras lacks.
Each token-wise Dense runs on the tokens flattened to (batch * tokens, features) (see
``_token_dense``): the same numbers, and the bias stays inside TFLite's FULLY_CONNECTED.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from harness_contract.model.vit import LAYER_NORM_EPS, ViTDef

from .names import layer_name

KTensor = Any


@keras.utils.register_keras_serializable(package="harness")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned (tokens, dim) table to every image's tokens."""

    def __init__(self, tokens: int, dim: int, initializer: str = "zeros", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokens, self.dim, self.initializer = tokens, dim, initializer

    def build(self, input_shape: Any) -> None:
        self.table = self.add_weight(
            name="pos_embed", shape=(self.tokens, self.dim), initializer=self.initializer
        )
        super().build(input_shape)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x + self.table

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "tokens": self.tokens,
            "dim": self.dim,
            "initializer": self.initializer,
        }


def _dense(units: int, name: str, init: str) -> keras.layers.Dense:
    return keras.layers.Dense(units, kernel_initializer=init, name=layer_name(name))


def _token_dense(x: KTensor, units: int, name: str, init: str) -> KTensor:
    """A Dense on every token, run on the tokens flattened to (batch * tokens, features).
    On a 3-D input Keras' Dense is a tensordot whose bias the TFLite converter cannot fuse
    into the FULLY_CONNECTED: it becomes an int8 ADD of its own after a reshape, and after
    tfmot QAT (no fake-quant between the matmul and that add) a float FULLY_CONNECTED."""
    tokens = x.shape[1]
    flat = tf.reshape(x, (-1, x.shape[-1]))
    return tf.reshape(_dense(units, name, init)(flat), (-1, tokens, units))


def _norm(name: str) -> keras.layers.LayerNormalization:
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPS, name=layer_name(name))


def _attention(net: ViTDef, b: str, x: KTensor, init: str) -> KTensor:
    n, h, hd = net.tokens, net.heads, net.head_dim
    qkv = _token_dense(x, 3 * net.dim, f"{b}.attn.qkv", init)
    qkv = keras.layers.Reshape((n, 3, h, hd), name=layer_name(f"{b}.attn.split"))(qkv)
    qkv = keras.layers.Permute((2, 3, 1, 4), name=layer_name(f"{b}.attn.heads"))(qkv)
    q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]  # (batch, heads, tokens, head_dim)
    scores = tf.matmul(q, k, transpose_b=True) * (hd**-0.5)
    attn = keras.layers.Softmax(axis=-1, name=layer_name(f"{b}.attn.softmax"))(scores)
    out = keras.layers.Permute((2, 1, 3), name=layer_name(f"{b}.attn.merge"))(tf.matmul(attn, v))
    out = keras.layers.Reshape((n, net.dim), name=layer_name(f"{b}.attn.concat"))(out)
    return _token_dense(out, net.dim, f"{b}.attn.proj", init)


def _block(net: ViTDef, i: int, x: KTensor, init: str) -> KTensor:
    b = f"blocks.{i}"
    x = keras.layers.Add(name=layer_name(f"{b}.add1"))(
        [x, _attention(net, b, _norm(f"{b}.norm1")(x), init)]
    )
    hidden = _token_dense(_norm(f"{b}.norm2")(x), net.mlp_dim, f"{b}.mlp.fc1", init)
    hidden = keras.layers.Activation("gelu", name=layer_name(f"{b}.mlp.act"))(hidden)
    mlp = _token_dense(hidden, net.dim, f"{b}.mlp.fc2", init)
    return keras.layers.Add(name=layer_name(f"{b}.add2"))([x, mlp])


def build_graph(net: ViTDef, init: str) -> keras.Model:
    """NHWC float input (normalized outside the model), every kernel drawn by ``init``."""
    inputs = keras.Input((32, 32, 3), name="images")
    x = keras.layers.Conv2D(
        net.dim,
        net.patch,
        net.patch,
        padding="valid",
        kernel_initializer=init,
        name="patch_embed",
    )(inputs)
    # (batch, rows, cols, dim) -> (batch, tokens, dim), row-major: PyTorch's flatten order.
    x = keras.layers.Reshape((net.tokens, net.dim), name="patch_tokens")(x)
    x = PositionEmbedding(net.tokens, net.dim, init, name="pos_embed")(x)
    for i in range(net.depth):
        x = _block(net, i, x, init)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(_norm("norm")(x))
    logits = _dense(net.num_classes, "head", init)(x)
    return keras.Model(inputs, logits, name="cifar_vit")


def canonical_to_keras(net: ViTDef, weights: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Layer name -> that layer's weights in Keras order and layout (HWIO, (in, out))."""
    out = {
        "patch_embed": [
            weights["patch_embed.weight"].transpose(2, 3, 1, 0),  # OIHW -> HWIO
            weights["patch_embed.bias"],
        ],
        "pos_embed": [weights["pos_embed"]],
    }
    for name in net.norms():
        out[layer_name(name)] = [weights[f"{name}.weight"], weights[f"{name}.bias"]]
    for name, _, _ in net.linears():
        out[layer_name(name)] = [weights[f"{name}.weight"].T, weights[f"{name}.bias"]]
    return out


def keras_to_canonical(model: keras.Model, net: ViTDef) -> dict[str, np.ndarray]:
    def tensors(name: str) -> list[np.ndarray]:
        return [np.asarray(w) for w in model.get_layer(layer_name(name)).get_weights()]

    kernel, bias = tensors("patch_embed")
    out = {
        "patch_embed.weight": np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)),
        "patch_embed.bias": bias,
        "pos_embed": tensors("pos_embed")[0],
    }
    for name in net.norms():
        out[f"{name}.weight"], out[f"{name}.bias"] = tensors(name)
    for name, _, _ in net.linears():
        kernel, bias = tensors(name)
        out[f"{name}.weight"], out[f"{name}.bias"] = np.ascontiguousarray(kernel.T), bias
    return out
