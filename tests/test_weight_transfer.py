"""Fairness rule 2: both fp32 models start from one set of weights and compute the same function.

Tolerance for logits (stated once, used everywhere here): float32 convolutions summed in a
different order differ by rounding only, so max |torch - keras| <= 1e-4 * max(1, max |logit|).
"""

from __future__ import annotations

import numpy as np
import pytest

import tf_runner  # noqa: F401 - sets TF_USE_LEGACY_KERAS before TensorFlow is first imported
from harness_contract.data.stream import normalize_nhwc
from harness_contract.model.architecture import resnet18
from harness_contract.model.vit import vit
from harness_contract.model.weights import initial_weights
from harness_contract.spec import ModelSpec, OptimSpec

tf = pytest.importorskip(
    "tensorflow", reason="TensorFlow is not installed: pip install -e '.[tensorflow]'"
)
torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[pytorch]'")

from tf_runner.model import build_model as build_keras  # noqa: E402
from tf_runner.model import keras_to_canonical  # noqa: E402
from tf_runner.tensors import Normalizer as KerasNormalizer  # noqa: E402
from tf_runner.train import SGDTrainer as KerasTrainer  # noqa: E402
from torch_runner.model import build_model as build_torch  # noqa: E402
from torch_runner.tensors import Normalizer as TorchNormalizer  # noqa: E402
from torch_runner.train import SGDTrainer as TorchTrainer  # noqa: E402

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
LOGIT_RTOL = 1e-4
FULL_WIDTH_PARAMETERS = 11_169_162


def _spec(variant: str, width: float = 0.25) -> ModelSpec:
    # zero_init_residual=False: every residual branch is live, so a wrong layout anywhere shows.
    return ModelSpec(variant=variant, width_multiplier=width, zero_init_residual=False)


def _weights(spec: ModelSpec) -> dict[str, np.ndarray]:
    """The shared initial weights with every bias and BatchNorm tensor made non-trivial,
    so a swapped gamma/beta or mean/variance, or a dropped bias, changes the logits."""
    weights = initial_weights(spec, seed=0)
    rng = np.random.default_rng(1)
    for name, value in weights.items():
        if value.ndim == 1 and not name.startswith("fc."):
            fresh = (
                rng.uniform(0.5, 1.5, value.shape)
                if name.endswith(("running_var", "_bn.weight"))
                else rng.normal(0.0, 0.1, value.shape)
            )
            weights[name] = fresh.astype(np.float32)
    return weights


def _images(n: int = 8) -> np.ndarray:
    return np.random.default_rng(2).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _torch_logits(model: torch.nn.Module, x_nhwc: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).copy())).numpy()


def _assert_close(a: np.ndarray, b: np.ndarray, rtol: float = LOGIT_RTOL) -> None:
    scale = max(1.0, float(np.abs(a).max()))
    diff = float(np.abs(a - b).max())
    assert diff <= rtol * scale, f"max |diff| {diff:.3g} > {rtol} * {scale:.3g}"


@pytest.mark.parametrize("variant", ["nobn", "bn"])
def test_both_fp32_models_give_the_same_logits_from_the_same_weights(variant: str) -> None:
    spec = _spec(variant)
    net, weights = resnet18(spec), _weights(spec)
    x = normalize_nhwc(_images(), MEAN, STD)
    torch_logits = _torch_logits(build_torch(net, weights), x)
    keras_logits = build_keras(net, weights)(x, training=False).numpy()  # BN in inference mode
    assert np.abs(torch_logits).max() > 1e-2  # a network that outputs ~0 would prove nothing
    _assert_close(torch_logits, keras_logits)


def test_full_width_nobn_model_has_the_papers_parameter_count_in_both_frameworks() -> None:
    spec = ModelSpec()
    net, weights = resnet18(spec), initial_weights(spec, seed=0)
    assert net.parameter_count() == FULL_WIDTH_PARAMETERS
    torch_count = sum(p.numel() for p in build_torch(net, weights).parameters())
    keras_count = sum(int(np.prod(v.shape)) for v in build_keras(net, weights).trainable_weights)
    assert torch_count == keras_count == FULL_WIDTH_PARAMETERS


def test_both_normalizers_produce_the_reference_values() -> None:
    images = _images()
    reference = normalize_nhwc(images, MEAN, STD)
    keras_x = KerasNormalizer(MEAN, STD)(tf.constant(images)).numpy()
    torch_x = TorchNormalizer(MEAN, STD)(images, torch.device("cpu")).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(keras_x, reference, rtol=0, atol=1e-6)
    np.testing.assert_allclose(torch_x, reference, rtol=0, atol=1e-6)


def _keras_as_canonical(model: tf.keras.Model, names: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for name in names:
        layer_name, _, tensor = name.rpartition(".")
        weights = model.get_layer(layer_name.replace(".", "_")).get_weights()
        if layer_name.endswith("_bn"):
            order = ("weight", "bias", "running_mean", "running_var")
            out[name] = weights[order.index(tensor)]
        elif tensor == "bias":
            out[name] = weights[1]
        else:
            kernel = weights[0]
            out[name] = kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T
    return out


@pytest.mark.parametrize("variant", ["nobn", "bn"])
def test_sgd_steps_move_both_frameworks_to_the_same_weights(variant: str) -> None:
    """The TF trainer writes out torch.optim.SGD (clipping, coupled weight decay, momentum
    buffer starting at the first gradient); three steps must land on the same weights."""
    spec = _spec(variant, width=0.125)
    net, weights = resnet18(spec), _weights(spec)
    optim = OptimSpec(lr=0.05, momentum=0.9, weight_decay=5e-4, grad_clip_norm=1.0)
    torch_model, keras_model = build_torch(net, weights), build_keras(net, weights)
    torch_trainer = TorchTrainer(
        torch_model, optim, TorchNormalizer(MEAN, STD), torch.device("cpu")
    )
    keras_trainer = KerasTrainer(keras_model, optim, KerasNormalizer(MEAN, STD), "/CPU:0")
    rng = np.random.default_rng(3)
    for lr in (0.05, 0.03, 0.05):  # a changing lr must not be baked into the traced step
        images = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, 16)
        torch_trainer.step(images, labels, lr)
        keras_trainer.step(images, labels, lr)
    torch_loss, torch_acc = torch_trainer.end_epoch()
    keras_loss, keras_acc = keras_trainer.end_epoch()
    assert keras_loss == pytest.approx(torch_loss, rel=1e-4)
    assert keras_acc == torch_acc
    expected = {
        k: v.numpy()
        for k, v in torch_model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    got = _keras_as_canonical(keras_model, sorted(expected))
    moved = max(float(np.abs(expected[k] - weights[k]).max()) for k in expected)
    assert moved > 1e-3  # the steps really changed the weights
    for name in expected:
        # BatchNorm's backward subtracts near-equal sums, which amplifies rounding: on one
        # Intel Xeon, TensorFlow's own 1- and 2-thread kernels end these three steps
        # 4.1e-4 apart (3.5% of the stem's movement), torch's 4.4e-5. So with BN the
        # frameworks must agree to a tenth of how far each tensor moved; a wrong update
        # rule (batch against running statistics, the running-stat momentum, biased
        # variance) is off by about all of it. Without BN they agree to 3e-8.
        step = float(np.abs(expected[name] - weights[name]).max())
        atol = 0.1 * step if variant == "bn" else 2e-4
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=atol, err_msg=name)


def _vit_weights(spec: ModelSpec) -> dict[str, np.ndarray]:
    """The shared ViT weights with every bias and LayerNorm made non-trivial and the
    position table larger, so a swapped q/k/v split, head order, token order or a dropped
    bias changes the logits."""
    weights = initial_weights(spec, seed=0)
    rng = np.random.default_rng(1)
    for name, value in weights.items():
        if value.ndim == 1:
            weights[name] = (value + rng.normal(0.0, 0.2, value.shape)).astype(np.float32)
    weights["pos_embed"] = (weights["pos_embed"] * 20).astype(np.float32)
    return weights


def test_both_fp32_vits_give_the_same_logits_from_the_same_weights() -> None:
    spec = ModelSpec(arch="vit", vit={"dim": 32, "depth": 2, "heads": 4, "mlp_ratio": 2.0})
    net, weights = vit(spec), _vit_weights(spec)
    x = normalize_nhwc(_images(), MEAN, STD)
    torch_logits = _torch_logits(build_torch(net, weights), x)
    keras_model = build_keras(net, weights)
    keras_logits = keras_model(x, training=False).numpy()
    assert np.abs(torch_logits).max() > 1e-2
    _assert_close(torch_logits, keras_logits)
    # The mapping is exact both ways: Keras' weights read back are the canonical ones.
    back = keras_to_canonical(keras_model, net)
    assert back.keys() == weights.keys()
    assert all(np.array_equal(back[k], weights[k]) for k in weights)


def test_the_default_vit_has_the_same_parameter_count_in_both_frameworks() -> None:
    net = vit(ModelSpec(arch="vit"))
    torch_count = sum(p.numel() for p in build_torch(net, None).parameters())
    keras_count = int(sum(np.prod(v.shape) for v in build_keras(net, None).trainable_weights))
    assert torch_count == keras_count == net.parameter_count() == 141_898
