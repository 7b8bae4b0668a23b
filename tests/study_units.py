"""Small in-memory inputs for testing the study's units one at a time (no files, no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness_contract.data.cifar import Cifar10
from harness_contract.spec import ExperimentSpec, build_spec

from .test_pipeline import FAST


def tiny_data(train: int = 200, test: int = 70, seed: int = 0) -> Cifar10:
    """Two classes a linear model separates: bright images are class 1, dark ones class 0."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 2, n).astype(np.int64)
        base = np.where(labels[:, None, None, None] == 1, 170, 60)
        noise = rng.integers(-40, 40, (n, 32, 32, 3))
        return np.clip(base + noise, 0, 255).astype(np.uint8), labels

    train_images, train_labels = split(train)
    test_images, test_labels = split(test)
    return Cifar10(
        train_images, train_labels, test_images, test_labels, (), Path("."), "synthetic", "d1"
    )


def tiny_spec(*extra: str) -> ExperimentSpec:
    return build_spec("smoke", None, [*FAST, *extra])
