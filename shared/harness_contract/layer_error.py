"""Per-layer quantization error: the shared formulas, the canonical layer list, and the
metrics.json pieces that hold it (``VariantMetrics.layers``).

Both frameworks are measured with the same numpy formula on the same images, so a
layer's figures can be set side by side across frameworks:

* SQNR (dB) = 10 log10( sum(ref^2) / sum((ref - q)^2) ), the signal-to-quantization-noise
  ratio of the int8 model's dequantized output ``q`` against the fp32 output ``ref``
  (torch.ao.ns.fx.utils.compute_sqnr's 20 log10(|x| / |x - y|), the same number).
* MSE = mean((ref - q)^2).

A layer's output is taken where both frameworks' int8 graphs hold it: after the ReLU
that directly follows the conv (the stem and every block's conv1, which both int8
graphs fuse into the conv) and after its BatchNorm where there is one; the raw output
otherwise (conv2 and the shortcut feed an add, fc is the logits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from .architecture import ResNetDef
from .strict import Strict as _Strict  # metrics.py's base (metrics imports this module)

WORST = 5  # how many layers the analysis names as the worst


@dataclass(frozen=True)
class CanonicalLayer:
    name: str  # "stem", "stages.1.0.conv1", "fc"
    kind: Literal["conv", "dense"]
    # The op whose output is compared: "relu" (a ReLU follows directly), "bn", or "raw".
    output: Literal["relu", "bn", "raw"]


def canonical_layers(net: ResNetDef) -> list[CanonicalLayer]:
    """Every conv of ``net`` and the dense layer, in network order."""
    out = []
    for c in net.convs():
        followed_by_relu = c.name == "stem" or c.name.endswith(".conv1")
        output = "relu" if followed_by_relu else ("bn" if c.bn else "raw")
        out.append(CanonicalLayer(c.name, "conv", output))
    out.append(CanonicalLayer("fc", "dense", "raw"))
    return out


def _sums(reference: np.ndarray, quantized: np.ndarray) -> tuple[float, float, int]:
    ref = np.asarray(reference, np.float64)
    q = np.asarray(quantized, np.float64)
    if ref.shape != q.shape:
        raise ValueError(f"shapes differ: fp32 {ref.shape}, int8 {q.shape}")
    noise = ref - q
    return float(np.sum(ref * ref)), float(np.sum(noise * noise)), ref.size


def sqnr_db(reference: np.ndarray, quantized: np.ndarray) -> float | None:
    """SQNR in dB; None where it is undefined (a layer whose fp32 output is all zero, or
    an int8 output identical to it)."""
    signal, noise, _ = _sums(reference, quantized)
    if signal == 0.0 or noise == 0.0:
        return None
    return float(10.0 * np.log10(signal / noise))


def mse(reference: np.ndarray, quantized: np.ndarray) -> float:
    _, noise, n = _sums(reference, quantized)
    return noise / n if n else 0.0


# ---------------------------------------------------------------- metrics.json pieces


class LayerError(_Strict):
    """One canonical layer of one int8 variant against the fp32 model, on the fixed images.

    sqnr_db/mse: propagated (the int8 model run end to end up to this layer).
    own_sqnr_db/own_mse: the layer's own error (the same input fed to its int8 and its
    float version), where the method gives it. None: undefined or not given.
    """

    layer: str  # canonical name (harness_contract.architecture)
    kind: Literal["conv", "dense"]
    sqnr_db: float | None = None
    mse: float | None = Field(default=None, ge=0)
    own_sqnr_db: float | None = None
    own_mse: float | None = Field(default=None, ge=0)
    tool_name: str | None = None  # the framework's own name for it (node, tensor)
    # Whether the int8 model rounds this layer's output to int8 itself. False: the output
    # stays float into the next op (PT2E fuses conv2 into the residual add), so the own
    # error is weight rounding alone and compares with a framework that rounds the output
    # only as such. None: not known.
    output_quantized: bool | None = None


class WhatIf(_Strict):
    """The variant converted again with its ``k`` worst layers left in float."""

    k: int = Field(ge=1)
    float_layers: list[str]
    status: Literal["ok", "failed", "unavailable"]
    reason: str | None = None
    top1: float | None = Field(default=None, ge=0, le=1)
    agreement_with_fp32: float | None = Field(default=None, ge=0, le=1)
    size_bytes: int | None = Field(default=None, ge=0)
    latency_b1_p50_ms: float | None = Field(default=None, ge=0)
    device: str | None = None
    threads: int | None = Field(default=None, ge=1)
    seconds: float | None = Field(default=None, ge=0)  # converting (and fine-tuning) again


class LayerAnalysis(_Strict):
    """Where one int8 variant loses accuracy, layer by layer, and what float buys back."""

    status: Literal["ok", "failed", "unavailable"]
    reason: str | None = None
    # Which tool or method produced the figures (propagated and own error).
    method: str | None = None
    own_method: str | None = None
    images: int = Field(default=0, ge=0)  # the first N test images, the same for every framework
    layers: list[LayerError] = Field(default_factory=list)
    unmapped: list[str] = Field(default_factory=list)  # framework names no canonical layer took
    # The worst layers first; ranked by own SQNR where every layer has one, else propagated.
    ranked_by: Literal["own_sqnr_db", "sqnr_db"] | None = None
    worst: list[str] = Field(default_factory=list)
    what_if: list[WhatIf] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    seconds: float | None = Field(default=None, ge=0)  # the per-layer figures (no what-if)
    what_if_seconds: float | None = Field(default=None, ge=0)  # every what-if, measured


def rank(layers: list[LayerError]) -> tuple[list[str], str | None]:
    """Layer names, worst first, and the figure ranked by: own SQNR when every layer with
    a propagated SQNR has one too, else propagated SQNR. Layers without one (undefined: an
    all-zero fp32 output) are not ranked."""
    with_sqnr = [x for x in layers if x.sqnr_db is not None]
    if not with_sqnr:
        return [], None
    use_own = all(x.own_sqnr_db is not None for x in with_sqnr)
    key = "own_sqnr_db" if use_own else "sqnr_db"
    ordered = sorted(with_sqnr, key=lambda x: getattr(x, key))
    return [x.layer for x in ordered], key
