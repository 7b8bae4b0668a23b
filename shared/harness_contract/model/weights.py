"""Initial weights generated once, in numpy, from the seed: identical for every framework.

The paper's cross-framework accuracy gap came from each framework's own
initializer. Here both runners load these tensors instead (canonical layouts:
conv OIHW, dense (out, in)); runners convert layouts, never values.
"""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

import numpy as np

from harness_contract.fs.atomic import write_bytes_atomic
from harness_contract.model.architecture import ResNetDef
from harness_contract.model.network import Network, network
from harness_contract.model.vit import ViTDef
from harness_contract.spec import ModelSpec

_WEIGHT_STREAM = 7  # sub-stream id, distinct from the input stream's


def initial_weights(model: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    net = network(model)
    rng = np.random.default_rng([seed, _WEIGHT_STREAM])
    if isinstance(net, ViTDef):
        return _checked(net, _vit_weights(net, rng))
    return _checked(net, _resnet_weights(net, model, rng))


def _resnet_weights(
    net: ResNetDef, model: ModelSpec, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Kaiming-normal (fan_in, ReLU gain) convs, zero biases, PyTorch-style uniform fc."""
    out: dict[str, np.ndarray] = {}
    for c in net.convs():
        fan_in = c.in_ch * c.kernel * c.kernel
        w = rng.standard_normal((c.out_ch, c.in_ch, c.kernel, c.kernel)) * math.sqrt(2.0 / fan_in)
        if c.closes_branch and model.zero_init_residual and not c.bn:
            w = np.zeros_like(w)  # the block starts as the identity (Fixup)
        out[f"{c.name}.weight"] = w.astype(np.float32)
        if c.bias:
            out[f"{c.name}.bias"] = np.zeros(c.out_ch, np.float32)
        if c.bn:
            # With BatchNorm, zeroing the branch's last BN scale has the same effect.
            gamma = 0.0 if (c.closes_branch and model.zero_init_residual) else 1.0
            out[f"{c.name}_bn.weight"] = np.full(c.out_ch, gamma, np.float32)
            out[f"{c.name}_bn.bias"] = np.zeros(c.out_ch, np.float32)
            out[f"{c.name}_bn.running_mean"] = np.zeros(c.out_ch, np.float32)
            out[f"{c.name}_bn.running_var"] = np.ones(c.out_ch, np.float32)
    bound = 1.0 / math.sqrt(net.fc_in)
    out["fc.weight"] = rng.uniform(-bound, bound, (net.num_classes, net.fc_in)).astype(np.float32)
    out["fc.bias"] = rng.uniform(-bound, bound, net.num_classes).astype(np.float32)
    return out


def _vit_weights(net: ViTDef, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """timm's ViT recipe: every dense kernel and the position embedding normal with
    std 0.02, the patch conv LeCun-normal (std 1/sqrt(fan_in)), zero biases, LayerNorms
    the identity (scale 1, shift 0)."""
    norms = {f"{n}.weight" for n in net.norms()}
    out: dict[str, np.ndarray] = {}
    for name, shape in net.tensor_shapes().items():
        if name.endswith(".bias"):
            out[name] = np.zeros(shape, np.float32)
        elif name in norms:
            out[name] = np.ones(shape, np.float32)
        elif name == "patch_embed.weight":
            fan_in = shape[1] * shape[2] * shape[3]
            out[name] = (rng.standard_normal(shape) / math.sqrt(fan_in)).astype(np.float32)
        else:
            out[name] = (rng.standard_normal(shape) * 0.02).astype(np.float32)
    return out


def _checked(net: Network, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    expected = net.tensor_shapes()
    got = {k: tuple(v.shape) for k, v in weights.items()}
    if got != expected:
        raise AssertionError(f"initial weights disagree with the architecture: {got} != {expected}")
    return weights


def weights_digest(weights: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(weights):
        h.update(name.encode())
        h.update(np.ascontiguousarray(weights[name]).tobytes())
    return h.hexdigest()[:16]


def save_weights(path: Path, weights: dict[str, np.ndarray]) -> None:
    # Through a buffer: np.savez would append ".npz" to the name, and the write is atomic.
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
    write_bytes_atomic(Path(path), buffer.getvalue())


def load_weights(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
