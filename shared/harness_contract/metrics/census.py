"""What actually ran in int8: a converted model's ops counted by family and precision.

Each runner reads its own artifact (PyTorch: the PT2E converted graph and the .pte's
XNNPACK delegates; TensorFlow: the .tflite's operators) and maps each op onto one of the
families below, so the two frameworks' int8 coverage sits side by side. An op is int8
when it computes on int8 tensors (its inputs are quantized, or it runs inside an int8
kernel); float otherwise, quantize/dequantize boundaries excluded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from harness_contract.strict import Strict

OpFamily = Literal[
    "conv", "linear", "matmul", "softmax", "layer_norm", "gelu", "relu", "add", "mean", "other"
]
# Display order: the layers with weights, then attention, then the elementwise rest.
FAMILIES: tuple[OpFamily, ...] = (
    "conv",
    "linear",
    "matmul",
    "softmax",
    "layer_norm",
    "gelu",
    "relu",
    "add",
    "mean",
    "other",
)


class OpCount(Strict):
    family: OpFamily
    int8_ops: int = Field(ge=0)
    float_ops: int = Field(ge=0)


class OpCensus(Strict):
    """One int8 model's ops by family (families with no op are left out)."""

    source: str  # what was read, e.g. "PT2E converted graph", ".tflite operators"
    counts: list[OpCount] = Field(default_factory=list)
    # The framework op names counted as "other", so a reader sees what fell outside.
    other: list[str] = Field(default_factory=list)

    def of(self, family: OpFamily) -> OpCount | None:
        return next((c for c in self.counts if c.family == family), None)


def count_ops(source: str, ops: Iterable[tuple[OpFamily, bool, str]]) -> OpCensus:
    """The census of ``(family, is_int8, framework op name)`` triples."""
    int8: Counter[OpFamily] = Counter()
    fp: Counter[OpFamily] = Counter()
    other: set[str] = set()
    for family, is_int8, name in ops:
        (int8 if is_int8 else fp)[family] += 1
        if family == "other":
            other.add(name)
    counts = [
        OpCount(family=f, int8_ops=int8[f], float_ops=fp[f]) for f in FAMILIES if int8[f] + fp[f]
    ]
    return OpCensus(source=source, counts=counts, other=sorted(other))
