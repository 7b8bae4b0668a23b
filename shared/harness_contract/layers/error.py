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
otherwise (conv2 and the shortcut feed an add, fc is the logits). Each residual block
adds one measuring point without weights, its output after the add and ReLU
(``stages.<s>.<b>.out``), where both frameworks round to int8: the like-for-like point
for comparing the frameworks side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from harness_contract.model.network import Network
from harness_contract.model.vit import ViTDef
from harness_contract.strict import (
    Strict as _Strict,  # metrics.py's base (metrics imports this module)
)

WORST = 5  # how many layers the analysis names as the worst
Ranking = Literal["weight", "sensitivity"]  # the spec's analysis.ranking
RankedBy = Literal["sensitivity_sqnr_db", "weight_sqnr_db", "own_sqnr_db", "sqnr_db"]


@dataclass(frozen=True)
class CanonicalLayer:
    name: str  # "stem", "stages.1.0.conv1", "fc", "stages.1.0.out"; "blocks.0.attn.qkv"
    kind: Literal["conv", "dense", "block"]  # block: a residual block's output, no weights
    # The op whose output is compared: "relu" (a ReLU follows directly), "bn", or "raw".
    output: Literal["relu", "bn", "raw"]


def canonical_layers(net: Network) -> list[CanonicalLayer]:
    """Every conv of ``net`` and the dense layer, in network order (for the ViT: the
    patch conv, then every dense layer; their raw outputs)."""
    if isinstance(net, ViTDef):
        patch = CanonicalLayer("patch_embed", "conv", "raw")
        return [patch, *(CanonicalLayer(name, "dense", "raw") for name, _, _ in net.linears())]
    out = []
    for c in net.convs():
        followed_by_relu = c.name == "stem" or c.name.endswith(".conv1")
        output = "relu" if followed_by_relu else ("bn" if c.bn else "raw")
        out.append(CanonicalLayer(c.name, "conv", output))
    out.append(CanonicalLayer("fc", "dense", "raw"))
    return out


def block_output(block: str) -> str:
    """The measuring point after a block's add and ReLU: "stages.1.0" -> "stages.1.0.out"."""
    return f"{block}.out"


def measuring_points(net: Network) -> list[CanonicalLayer]:
    """``canonical_layers`` with each residual block's output after its last layer (the
    ViT's: after its second residual add)."""
    layers = {x.name: x for x in canonical_layers(net)}
    if isinstance(net, ViTDef):
        out = [layers["patch_embed"]]
        for i in range(net.depth):
            b = f"blocks.{i}"
            out += [layers[f"{b}.{x}"] for x in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")]
            out.append(CanonicalLayer(block_output(b), "block", "raw"))
        return [*out, layers["head"]]
    out = [layers[net.stem.name]]
    for b in net.blocks:
        for conv in (b.conv1, b.conv2, b.shortcut):
            if conv is not None:
                out.append(layers[conv.name])
        out.append(CanonicalLayer(block_output(b.name), "block", "relu"))
    out.append(layers["fc"])
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
    float version), where the method gives it, split into weight_* (the layer's op with
    its int8-rounded weights, float output, against its reference weights: what keeping
    it in float removes) and output_* (the int8 output against that float output: its
    output rounding alone). None: undefined (identical, or an all-zero reference), not
    given, or a block output (no weights).
    """

    layer: str  # canonical name (harness_contract.model.architecture), or a block's ".out"
    kind: Literal["conv", "dense", "block"]
    sqnr_db: float | None = None
    mse: float | None = Field(default=None, ge=0)
    own_sqnr_db: float | None = None
    own_mse: float | None = Field(default=None, ge=0)
    weight_sqnr_db: float | None = None
    weight_mse: float | None = Field(default=None, ge=0)
    output_sqnr_db: float | None = None
    output_mse: float | None = Field(default=None, ge=0)
    # analysis.ranking = "sensitivity": the variant made again with this layer alone in
    # float, its logits against fp32's (SQNR) and its top-1 agreement with fp32's.
    sensitivity_sqnr_db: float | None = None
    sensitivity_agreement: float | None = Field(default=None, ge=0, le=1)
    # QAT: the fine-tuned float model against the fp32 baseline at this point (the drift
    # the fine-tuning made, kept apart from the quantization error above).
    drift_sqnr_db: float | None = None
    tool_name: str | None = None  # the framework's own name for it (node, tensor)
    # Whether the int8 model rounds this layer's output to int8 itself. False: the output
    # stays float into the next op (PT2E fuses conv2 into the residual add), so the own
    # error is weight rounding alone and compares with a framework that rounds the output
    # only as such. None: not known.
    output_quantized: bool | None = None


class WhatIf(_Strict):
    """The variant converted again with its ``k`` worst layers left in float; k = 0 is the
    plain int8 variant, measured again in the same window (latency: the median of its runs
    timed between the k rows)."""

    k: int = Field(ge=0)
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
    # The weighted layers, the one floating would fix most first (``rank``), and the figure
    # ranked by; ``worst`` is its first five. The what-if floats the first k of ``ranking``.
    ranked_by: RankedBy | None = None
    worst: list[str] = Field(default_factory=list)
    ranking: list[str] = Field(default_factory=list)
    # What the per-layer figures compare against: the fp32 baseline, or for QAT its own
    # fine-tuned float model (drift_sqnr_db then holds the fine-tuning's drift apart).
    reference: Literal["fp32", "qat_float"] | None = None
    what_if: list[WhatIf] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    seconds: float | None = Field(default=None, ge=0)  # the per-layer figures (no what-if)
    sensitivity_seconds: float | None = Field(default=None, ge=0)  # one requantization a layer
    what_if_seconds: float | None = Field(default=None, ge=0)  # every what-if, measured


# What each ranking sorts by, in the order tried: a figure only counts when every ranked
# layer has it. Sensitivity: higher logits SQNR with the layer alone in float = more to gain.
_KEYS = {
    "sensitivity": ("sensitivity_sqnr_db", "weight_sqnr_db", "own_sqnr_db", "sqnr_db"),
    "weight": ("weight_sqnr_db", "own_sqnr_db", "sqnr_db"),
}


def rank(layers: list[LayerError], by: Ranking = "weight") -> tuple[list[str], str | None]:
    """Weighted layer names, the one floating would fix most first, and the figure ranked
    by: ``by``'s own figure when every ranked layer has one, else the next of ``_KEYS``
    (weight rounding, then own, then propagated SQNR). Block outputs are never ranked (they
    have no weights to keep in float), nor layers without a propagated SQNR (undefined:
    an all-zero fp32 output)."""
    with_sqnr = [x for x in layers if x.sqnr_db is not None and x.kind != "block"]
    if not with_sqnr:
        return [], None
    for key in _KEYS[by]:
        if all(getattr(x, key) is not None for x in with_sqnr):
            descending = key == "sensitivity_sqnr_db"
            ordered = sorted(with_sqnr, key=lambda x: getattr(x, key), reverse=descending)
            return [x.layer for x in ordered], key
    raise AssertionError("unreachable: every ranked layer has sqnr_db")
