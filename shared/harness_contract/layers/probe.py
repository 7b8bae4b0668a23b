"""What a runner implements for the per-layer analysis (harness_contract.layers.analysis), and
the running sums the shared formula pools batches with.

A ``LayerProbe`` reads every measuring point's fp32 and dequantized int8 outputs on the
same images (its framework's numeric debugger, or a direct reading of its graph), and
makes the variant again with chosen layers left in float. The formulas, the ranking and
the what-if measurement are shared, so both frameworks are judged the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness_contract.errors import HarnessError
from harness_contract.metrics.figures import TrainingStats

Pair = tuple[np.ndarray, np.ndarray]  # (reference, compared), the same shape


class AnalysisUnavailable(HarnessError):
    """This framework's tools cannot analyse this model here; says why (the tool's message)."""


@dataclass
class Int8Outputs:
    """One batch through the int8 model: each measuring point's dequantized output, and
    where the method gives it, each weighted layer's own error on the same input, whole
    and in its two parts (harness_contract.layers.error.LayerError)."""

    outputs: dict[str, np.ndarray]
    own: dict[str, Pair] = field(default_factory=dict)  # (float op, int8 op)
    # (float op with the reference weights, the same op with int8-rounded weights)
    weight: dict[str, Pair] = field(default_factory=dict)
    # (the op with int8-rounded weights, float output; the int8 output)
    output: dict[str, Pair] = field(default_factory=dict)
    tool_names: dict[str, str] = field(default_factory=dict)  # canonical -> framework name
    # canonical -> whether the int8 model rounds this output to int8 itself (PT2E leaves
    # conv2 and fc outputs in float where it fuses them into the next op); absent: not known
    output_quantized: dict[str, bool] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)  # framework names no layer took
    method: str = ""
    own_method: str | None = None


@dataclass
class OwnErrors:
    """Own error per canonical layer from a tool that computes it itself (TF's debugger)."""

    figures: dict[str, tuple[float | None, float]]  # canonical -> (own_sqnr_db, own_mse)
    method: str
    unmapped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RequantizeInputs:
    calibration: Sequence[np.ndarray]  # the shared PTQ calibration batches, uint8 NHWC
    fine_tune: Callable[[Any], tuple[Any, TrainingStats | None]]  # the study's QAT fine-tuning


class LayerProbe(ABC):
    """What a runner implements for the analysis (images are uint8 NHWC)."""

    @abstractmethod
    def fp32_layer_outputs(self, fp32: Any, images: np.ndarray) -> dict[str, np.ndarray]:
        """Each measuring point's float output (at the point layer_error describes)."""

    @abstractmethod
    def int8_layer_outputs(self, qmodel: Any, fp32: Any, images: np.ndarray) -> Int8Outputs:
        """Each measuring point's dequantized int8 output on the same images; ``fp32`` is
        the reference model whose weights the own/weight figures compare against."""

    def own_layer_error(
        self, variant: str, qmodel: Any, fp32: Any, images: np.ndarray, inputs: RequantizeInputs
    ) -> OwnErrors | None:
        """Own error from the framework's own debugger, where it has one; None: not given
        (or given by ``int8_layer_outputs``)."""
        return None

    def qat_float_model(self, trained: Any, fp32: Any) -> Any | None:
        """The fine-tuned QAT model (before conversion) as a float model like ``fp32``:
        QAT's per-layer reference, so its error is quantization and not the fine-tuning's
        drift. None: this runner cannot, and the baseline stays the reference."""
        return None

    @abstractmethod
    def requantize_keeping_float(
        self, variant: str, fp32: Any, float_layers: Sequence[str], inputs: RequantizeInputs
    ) -> Any:
        """The variant made again (same calibration, or the same QAT fine-tuning) with
        ``float_layers`` (canonical names) left in float, each still reading the int8
        activation its int8 version reads; runs through the runner's predict,
        latency_call and save like any int8 model."""


class Sums:
    """Running sums for the shared formula, so batches need not be kept."""

    def __init__(self) -> None:
        self.signal = self.noise = 0.0
        self.n = 0

    def add(self, ref: np.ndarray, q: np.ndarray) -> None:
        ref64, q64 = np.asarray(ref, np.float64), np.asarray(q, np.float64)
        if ref64.shape != q64.shape:
            raise ValueError(f"fp32 output {ref64.shape} and int8 output {q64.shape} differ")
        diff = ref64 - q64
        self.signal += float(np.sum(ref64 * ref64))
        self.noise += float(np.sum(diff * diff))
        self.n += ref64.size

    def figures(self) -> tuple[float | None, float]:
        sqnr = None
        if self.signal > 0 and self.noise > 0:
            sqnr = float(10 * np.log10(self.signal / self.noise))
        return sqnr, self.noise / self.n if self.n else 0.0
