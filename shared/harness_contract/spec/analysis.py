"""The spec's ``analysis`` section: the per-layer quantization error phase (docs/layers.md).

Validated like every other section: unknown keys are errors."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from harness_contract.spec.base import Section

MAX_ANALYSIS_IMAGES = 10_000  # the CIFAR-10 test split


class AnalysisSpec(Section):
    # Measure every int8 variant's per-layer error against fp32 (switch off to save time).
    enabled: bool = True
    # The first N test images, the same for every framework (fewer if the split is smaller).
    images: int = Field(256, ge=1, le=MAX_ANALYSIS_IMAGES)
    # For each k, convert again with the first k layers of the ranking left in float and
    # measure it. [] skips the what-if. k larger than the layer count keeps every ranked layer.
    keep_float: list[Annotated[int, Field(ge=1, le=64)]] = Field(default_factory=lambda: [1, 2, 4])
    # How the layers to keep in float are ranked: "weight" by each layer's weight-rounding
    # SQNR (what floating it removes; free), "sensitivity" by measurement (AIMET
    # QuantAnalyzer style: the variant made again with each layer alone in float, its logits
    # against fp32's; one requantization per layer, for QAT one fine-tuning per layer; only
    # for variants that get a what-if, the others rank by weight).
    ranking: Literal["weight", "sensitivity"] = "weight"

    # Which int8 variants get the what-if: a QAT what-if fine-tunes again for every k, the
    # costliest part of the analysis (the per-layer figures are taken for both either way).
    what_if_variants: list[Literal["ptq", "qat"]] = Field(default_factory=lambda: ["ptq", "qat"])

    @field_validator("keep_float")
    @classmethod
    def _sorted_unique(cls, values: list[int]) -> list[int]:
        if len(set(values)) != len(values):
            raise ValueError("lists a k more than once")
        return sorted(values)
