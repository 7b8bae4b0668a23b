"""uint8 NHWC batches from the shared stream -> normalized float32 NHWC tensors.

The same arithmetic as ``harness_contract.data.stream.normalize_nhwc`` (x * (1/255) - mean) / std,
in float32 and in that order, so TensorFlow sees the values PyTorch sees.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from harness_contract.data.stream import normalize_nhwc


class Normalizer:
    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.mean, self.std = tuple(mean), tuple(std)
        self._scale = tf.constant(1 / 255, tf.float32)
        self._mean = tf.constant(mean, tf.float32)
        self._std = tf.constant(std, tf.float32)

    def __call__(self, images: tf.Tensor | np.ndarray, device: str | None = None) -> tf.Tensor:
        """Normalized on ``device`` (None: the current device scope, as inside a traced
        step), converted there after copying the 4x smaller uint8."""
        if device is None:
            return self._normalize(images)
        with tf.device(device):
            return self._normalize(tf.convert_to_tensor(images))

    def _normalize(self, images: tf.Tensor) -> tf.Tensor:
        return (tf.cast(images, tf.float32) * self._scale - self._mean) / self._std

    def numpy(self, images: np.ndarray) -> np.ndarray:
        """For the TFLite paths (calibration, interpreter inputs), which take numpy arrays."""
        return normalize_nhwc(images, self.mean, self.std)
