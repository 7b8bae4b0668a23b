"""The int8 variants that carry a per-layer analysis (metrics.json
``variants.<v>.layers``), what the per-layer section and its what-if table read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.report.frame import ReportData
from harness_contract.layers.error import LayerAnalysis

INT8_VARIANTS = ("ptq", "qat")


@dataclass(frozen=True)
class Analysed:
    framework: str
    variant: str
    analysis: LayerAnalysis
    variant_metrics: Any  # the VariantMetrics it belongs to (accuracy, size, latency)

    @property
    def label(self) -> str:
        return f"{self.framework} {self.variant}"


def analyses(data: ReportData) -> list[Analysed]:
    """Every int8 variant that carries a layer analysis, framework by framework."""
    out = []
    for m in data.metrics:
        for name in INT8_VARIANTS:
            v = m.variants.get(name)
            analysis = getattr(v, "layers", None) if v is not None else None
            if analysis is not None:
                out.append(Analysed(m.framework, name, analysis, v))
    return out
