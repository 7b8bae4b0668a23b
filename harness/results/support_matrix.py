"""The support matrix of a run, side by side: each framework's probed answer to every
question of the paper's Table IV, and what the paper said about it. support.md and the
report's section are both drawn from this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness_contract.frameworks import FRAMEWORKS
from harness_contract.metrics import MetricsFile, ProbeResult, SupportMatrix
from harness_contract.study.support import PROBES

MISSING = "—"
FIRST = tuple(FRAMEWORKS)  # the paper's column order; other frameworks after
PAPER = "Table IV of the paper (2023)"
NO_CLAIM = "no issue listed"
TRANSFORMER_DROPPED = "Transformer abandoned for unsupported components (not itemized)"

# What the paper's Table IV ("major issues discovered during the project") said about
# each question, per framework, in its own words where it has them.
CLAIMS: dict[str, dict[str, str]] = {
    "int8_cpu": {"pytorch": "quantization only supported on CPU"},
    "int8_gpu": {
        "pytorch": "no quantization support on GPU; no general TPU support",
        "tensorflow": "convoluted implementation for GPU/TPU",
    },
    "int8_native": {"tensorflow": "auto quantization requires a special interpreter"},
    "profiler_training": {"tensorflow": "profiler has conflict with TF model layers"},
    "profiler_int8": {"tensorflow": "no profiler support for inference"},
    "auto_fusion": {"pytorch": "manual layer fusion expected"},
    "auto_setup": {
        "pytorch": "manual quantization agent setup; automated quantization in beta",
    },
    "qat_convert": {"tensorflow": "QAT has significant overhead (3x PyTorch)"},
    "custom_layer": {
        "tensorflow": "requires special layer annotation for unsupported layers (no documentation)",
    },
    "embedding": {
        "pytorch": "embedding type layers not supported",
        "tensorflow": "embedding type layers not supported",
    },
    "per_layer_access": {
        "pytorch": "quantization stubs do not allow further probing",
        "tensorflow": "TF Lite models are byte type, preventing access to model layers",
    },
    # The paper began with a Transformer and removed the components "not supported by
    # profiling and quantization methods" without listing them: one claim for each row.
    **{
        slug: dict.fromkeys(("pytorch", "tensorflow"), TRANSFORMER_DROPPED)
        for slug in (
            "int8_attention_matmul",
            "int8_softmax",
            "int8_layer_norm",
            "profiler_attention",
            "qat_transformer",
        )
    },
}


@dataclass(frozen=True)
class FrameworkSupport:
    """One framework's column: its probes, or why it has none."""

    name: str
    matrix: SupportMatrix | None
    why_missing: str | None = None

    def answer(self, slug: str) -> ProbeResult | None:
        if self.matrix is None:
            return None
        return next((p for p in self.matrix.probes if p.probe == slug), None)

    def cell(self, slug: str) -> str:
        """ "yes", "no: <error>", "not probed: <why>", "timed out after N s", or "—"."""
        probe = self.answer(slug)
        if probe is None or self.matrix is None:
            return MISSING
        if probe.outcome == "timed out":
            return f"timed out after {self.matrix.timeout_s:g} s"
        if probe.outcome == "yes" or not probe.detail:
            return probe.outcome
        return f"{probe.outcome}: {probe.detail}"

    @property
    def versions(self) -> str:
        if self.matrix is None:
            return f"no support data: {self.why_missing}"
        return ", ".join(f"{k} {v}" for k, v in self.matrix.versions.items()) or "not recorded"

    @property
    def seconds(self) -> float:
        return sum(p.seconds or 0.0 for p in self.matrix.probes) if self.matrix else 0.0


@dataclass(frozen=True)
class MatrixRow:
    slug: str
    area: str
    question: str
    cells: list[str]  # one per framework, in the order of ``frameworks``
    claims: list[str]  # the paper's, one per framework of FIRST


def why_missing(m: MetricsFile) -> str:
    """Why a framework's metrics.json has no support matrix."""
    if m.schema_version < 3:
        return f"its metrics.json (schema {m.schema_version}) predates the support probes"
    if m.status == "complete":
        return "the probes were switched off (support.enabled = false in the spec)"
    return f"the study ended {m.status} before the probes ran"


def frameworks(
    metrics: Sequence[MetricsFile], failed: Sequence[tuple[str, str]] = ()
) -> list[FrameworkSupport]:
    """Every framework of the run, PyTorch and TensorFlow first; ``failed`` are frameworks
    that left no metrics.json, with the reason."""
    found = [
        FrameworkSupport(m.framework, m.support, None if m.support else why_missing(m))
        for m in metrics
    ]
    found += [FrameworkSupport(name, None, why) for name, why in failed]
    rank = {name: i for i, name in enumerate(FIRST)}
    return sorted(found, key=lambda f: (rank.get(f.name, len(FIRST)), f.name))


def any_probed(fws: Sequence[FrameworkSupport]) -> bool:
    return any(f.matrix is not None for f in fws)


def rows(fws: Sequence[FrameworkSupport]) -> list[MatrixRow]:
    """One row per question of harness_contract.study.support.PROBES, in its order."""
    return [
        MatrixRow(
            p.slug,
            p.area,
            p.question,
            [f.cell(p.slug) for f in fws],
            [CLAIMS.get(p.slug, {}).get(name, NO_CLAIM) for name in FIRST],
        )
        for p in PROBES
    ]


def bound_text(fws: Sequence[FrameworkSupport]) -> str:
    """The per-probe bound(s), e.g. "60 s" (one per framework when they differ)."""
    bounds = {f.name: f.matrix.timeout_s for f in fws if f.matrix is not None}
    if len(set(bounds.values())) == 1:
        return f"{next(iter(bounds.values())):g} s"
    return ", ".join(f"{name} {b:g} s" for name, b in bounds.items())
