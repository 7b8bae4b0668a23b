"""What the per-layer tests share: a small spec, synthetic data, the planted weights, and
one analysis run per framework (imported lazily: each test file skips without its
framework)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness_contract.data.cifar import Cifar10, load_cifar10
from harness_contract.data.synthetic import write_synthetic
from harness_contract.layers.analysis import Analysis, RequantizeInputs
from harness_contract.layers.error import LayerAnalysis
from harness_contract.model.weights import initial_weights
from harness_contract.spec import ExperimentSpec, build_spec
from harness_contract.spec.analysis import AnalysisSpec

PLANTED = "stages.0.0.conv1"
DEAD_CHANNEL = 0
OUTLIER = 1000.0  # times the layer's largest weight
# The planted block's residual branch amplified, so the block's output depends on it (an
# untrained branch is small beside the identity path, and losing it would change little).
BRANCH_GAIN = 16.0
# One thread: PyTorch 2.13's oneDNN int8 1x1 stride-2 conv (jit_uni_int8_1x1:avx2) gives
# different uint8 outputs on identical calls with 2 threads on an AVX2 CPU, so the same
# int8 model's agreement moves between two evaluations (0.71 vs 0.73 seen in CI).
THREADS = 1


def small_spec(*overrides: str) -> ExperimentSpec:
    # ResNet18 (the smoke preset runs a ResNet10: these tests count 21 layers and 8 block
    # outputs) at an eighth of the width, every residual branch live (not zero-initialized).
    return build_spec(
        "smoke",
        overrides=[
            "device=cpu",
            "model.blocks_per_stage=2",
            "model.width_multiplier=0.125",
            "model.zero_init_residual=false",
            *overrides,
        ],
    )


def small_data(root: Path) -> Cifar10:
    if not (root / "cifar-10-batches-py").exists():
        write_synthetic(root, train_per_batch=40, test_count=200, seed=0)
    return load_cifar10(root)


def varied_weights(spec: ExperimentSpec) -> dict[str, np.ndarray]:
    """The shared initial weights with the fc bias at zero, so the untrained model's
    predictions follow its features (a bias alone would pick one class for every image)."""
    weights = initial_weights(spec.model, spec.seed)
    weights["fc.bias"] = np.zeros_like(weights["fc.bias"])
    return weights


def planted_weights(spec: ExperimentSpec) -> dict[str, np.ndarray]:
    """One hard-to-quantize conv: PLANTED gets, in every output channel, a weight
    OUTLIER times its largest one, on an input channel the stem never activates (its
    weights zero, its bias negative, so ReLU holds it at 0). The fp32 model computes
    exactly what it did; int8's per-channel weight scale grows OUTLIER-fold and every
    other weight of the layer rounds to zero."""
    weights = varied_weights(spec)
    weights["stem.weight"][DEAD_CHANNEL] = 0.0
    weights["stem.bias"][DEAD_CHANNEL] = -1.0
    kernel = weights[f"{PLANTED}.weight"]
    kernel[:, DEAD_CHANNEL, 1, 1] = OUTLIER * np.abs(kernel).max()
    block = PLANTED.rsplit(".", 1)[0]
    weights[f"{block}.conv2.weight"] *= BRANCH_GAIN
    return weights


def analyse_ptq(
    fw: Any, probe: Any, spec: ExperimentSpec, data: Cifar10, weights: dict[str, np.ndarray]
) -> tuple[LayerAnalysis, float]:
    """The PTQ variant's analysis (k = 1) and the plain PTQ model's agreement with fp32."""
    fp32 = fw.build(weights)
    calibration = [data.train_images[i : i + 32] for i in range(0, 64, 32)]
    int8 = fw.quantize_ptq(fp32, calibration).model
    reference = fw.predict(fp32, data.test_images).argmax(1)
    agreement = float((fw.predict(int8, data.test_images).argmax(1) == reference).mean())
    analysis = Analysis(
        fw,
        probe,
        spec,
        AnalysisSpec(images=64, keep_float=[1]),
        data,
        threads=THREADS,
        fp32_predictions=reference,
    )
    result = analysis.analyse("ptq", int8, fp32, RequantizeInputs(calibration, lambda m: (m, None)))
    return result, agreement
