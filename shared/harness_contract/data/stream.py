"""One seeded, framework-neutral input stream.

Every framework gets the same uint8 NHWC batches in the same order, with the same
crops and flips, for a given seed: the sampler and the augmentation live here,
in numpy, and runners only normalize and convert the batches they are handed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from harness_contract.spec import AugmentSpec

# Distinct sub-streams of one seed, so baseline epochs, QAT epochs and calibration
# never reuse each other's random numbers.
_PURPOSE = {"baseline": 1, "qat": 2, "calibration": 3}


@dataclass(frozen=True)
class Batch:
    images: np.ndarray  # (B, 32, 32, 3) uint8
    labels: np.ndarray  # (B,) int64


class TrainStream:
    """Shuffled, augmented training batches; ``epoch(e)`` depends only on (seed, purpose, e)."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        batch_size: int,
        seed: int,
        augment: AugmentSpec,
        purpose: str = "baseline",
    ) -> None:
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError("images must be uint8 NHWC with 3 channels")
        self.images, self.labels = images, labels.astype(np.int64, copy=False)
        self.batch_size, self.seed, self.augment = batch_size, seed, augment
        self.purpose = _PURPOSE[purpose]
        pad = augment.crop_padding
        # Pad once: each crop is then a plain slice of the padded image.
        self._padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0))) if pad else images

    def __len__(self) -> int:
        """Batches per epoch; the last partial batch is dropped (BatchNorm dislikes tiny ones)."""
        return len(self.images) // self.batch_size

    def epoch(self, epoch: int) -> Iterator[Batch]:
        rng = np.random.default_rng([self.seed, self.purpose, epoch])
        order = rng.permutation(len(self.images))
        n = len(self) * self.batch_size
        pad = self.augment.crop_padding
        offsets = rng.integers(0, 2 * pad + 1, size=(n, 2)) if pad else np.zeros((n, 2), int)
        flips = rng.random(n) < 0.5 if self.augment.hflip else np.zeros(n, bool)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            sl = slice(start, start + self.batch_size)
            yield Batch(self._augment(idx, offsets[sl], flips[sl]), self.labels[idx])

    def _augment(self, idx: np.ndarray, offsets: np.ndarray, flips: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), 32, 32, 3), dtype=np.uint8)
        for i, (j, (dy, dx), flip) in enumerate(zip(idx, offsets, flips, strict=True)):
            crop = self._padded[j, dy : dy + 32, dx : dx + 32]
            out[i] = crop[:, ::-1] if flip else crop
        return out


def eval_batches(images: np.ndarray, labels: np.ndarray, batch_size: int) -> Iterator[Batch]:
    """The test split in file order, un-augmented; the last batch may be short."""
    for start in range(0, len(images), batch_size):
        yield Batch(images[start : start + batch_size], labels[start : start + batch_size])


def calibration_indices(n_train: int, samples: int, seed: int) -> np.ndarray:
    """The same calibration images for every framework: a seeded subset of the training split."""
    if samples > n_train:
        raise ValueError(f"ptq.calibration_samples={samples} exceeds the {n_train} training images")
    rng = np.random.default_rng([seed, _PURPOSE["calibration"]])
    return np.sort(rng.permutation(n_train)[:samples])


def normalize_nhwc(
    images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]
) -> np.ndarray:
    """uint8 NHWC -> float32 NHWC, (x/255 - mean)/std. The reference both runners must match."""
    scale = np.float32(1 / 255)
    m = np.asarray(mean, np.float32)
    s = np.asarray(std, np.float32)
    return (images.astype(np.float32) * scale - m) / s
