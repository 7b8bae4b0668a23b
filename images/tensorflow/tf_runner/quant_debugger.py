"""TensorFlow's own per-layer tool for the analysis: ``tf.lite.experimental.
QuantizationDebugger`` on a converter set up as the PTQ phase's, calibrated on the shared
calibration images. Its NumericVerify ops give each layer's int8 output against its float
op on the same input (the own error); its ``denylisted_nodes`` make the selective
quantization the PTQ what-if uses (tf_runner.layers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from harness_contract.layers.analysis import OwnErrors

from . import litert

DEBUGGER = "tf.lite.experimental.QuantizationDebugger"


def make_debugger(
    normalize: Any,
    model: keras.Model,
    calibration: Sequence[np.ndarray],
    images: np.ndarray,
    **options: Any,
) -> Any:
    """A debugger over ``model`` converted full-int8 as the PTQ phase converts it;
    ``images`` (normalized float) are its debug set."""
    converter = litert.full_int8(litert.converter_for(model), calibrated=False)
    batches = [normalize.numpy(b) for b in calibration]
    converter.representative_dataset = lambda: ([b] for b in batches)
    return tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(**options),
        debug_dataset=lambda: _equal_batches(images),
    )


def _equal_batches(images: np.ndarray) -> Iterator[list[np.ndarray]]:
    """The debug images in equal batches (the debugger sizes its interpreter once, from
    the first): the largest divisor of their count up to 64, so no image is left out."""
    size = max(d for d in range(1, 65) if len(images) % d == 0)
    for start in range(0, len(images), size):
        yield [images[start : start + size]]


def layer_statistics(
    normalize: Any, model: keras.Model, images: np.ndarray, calibration: Sequence[np.ndarray]
) -> dict[str, dict[str, float]]:
    """Per NumericVerify tensor: mean noise and signal energy and element count per
    image (their ratio is the pooled SQNR, noise / n the MSE)."""

    def dequantized(q: Sequence[np.ndarray], scale: float, zp: int) -> list[np.ndarray]:
        return [(np.asarray(x, np.float64) - zp) * scale for x in q]

    metrics = {
        "signal": lambda f, q, s, z: float(sum(np.sum(np.square(x, dtype=np.float64)) for x in f)),
        "noise": lambda f, q, s, z: float(
            sum(np.sum(np.square(a - b)) for a, b in zip(f, dequantized(q, s, z), strict=True))
        ),
        "n": lambda f, q, s, z: float(sum(np.size(x) for x in f)),
    }
    debugger = make_debugger(
        normalize,
        model,
        calibration,
        normalize.numpy(images),
        layer_direct_compare_metrics=metrics,
    )
    debugger.run()
    return {name: dict(row) for name, row in debugger.layer_statistics.items()}


def own_errors(
    stats: dict[str, dict[str, float]], canonical_of: Callable[[str], str | None], dense: str
) -> OwnErrors:
    """The statistics per canonical layer (``canonical_of`` maps a tensor name to one;
    the model's output tensor keeps no layer name: it is the ``dense`` layer's)."""
    figures = {}
    for tensor, row in stats.items():
        canonical = canonical_of(tensor)
        if canonical is None and tensor.startswith("NumericVerify/Identity"):
            canonical = dense
        if canonical is None:
            continue  # add, pad, pool: not a conv or dense layer
        noise, signal, n = row["noise"], row["signal"], row["n"]
        sqnr = float(10 * np.log10(signal / noise)) if signal > 0 and noise > 0 else None
        figures[canonical] = (sqnr, noise / n)
    return OwnErrors(figures, f"{DEBUGGER} (NumericVerify: int8 op vs float op, same input)")
