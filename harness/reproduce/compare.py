"""The original against its rerun, per framework and variant: artifact digests (the
verdict), then the figures (top-1, agreement with fp32, size) within stated tolerances
and latency p50 within a bootstrap noise band (never part of the verdict)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.reproduce.explain import ContextDiff, context_differences
from harness.reproduce.latency_band import Band, load_samples, p50_ratio_band
from harness.reproduce.original import Original
from harness.reproduce.verify import FileCheck
from harness.run.rundir import RunDir
from harness_contract.errors import HarnessError
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import MetricsFile, VariantMetrics, read_metrics
from harness_contract.metrics.figures import LatencyStats

# Tolerances for "the figures still agree" when bits differ (stated in every report).
TOP1_TOLERANCE_PTS = 0.5
AGREEMENT_TOLERANCE_PTS = 0.5
SIZE_TOLERANCE = 0.001  # relative: 0.1 % of the original's bytes


@dataclass(frozen=True)
class ArtifactResult:
    file: str
    old_sha256: str | None  # as the original recorded it; None: the original had no such file
    new_sha256: str | None  # as the rerun recorded it; None: the rerun saved no such file

    @property
    def identical(self) -> bool:
        return self.old_sha256 is not None and self.old_sha256 == self.new_sha256


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str  # "pts" (percentage points) or "bytes"
    old: float | None
    new: float | None
    tolerance: float  # in ``unit``

    @property
    def difference(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old

    @property
    def within(self) -> bool | None:
        diff = self.difference
        return None if diff is None else abs(diff) <= self.tolerance + 1e-9


@dataclass(frozen=True)
class LatencyResult:
    batch_size: int
    threads: int
    old_p50_ms: float
    new_p50_ms: float | None  # None: the rerun has no such row
    band: Band | None


@dataclass(frozen=True)
class VariantResult:
    framework: str
    variant: str
    artifacts: list[ArtifactResult]
    figures: list[Figure]
    latency: list[LatencyResult]
    problem: str | None = None  # the rerun left nothing comparable for this variant

    @property
    def bit_identical(self) -> bool:
        return (
            self.problem is None
            and bool(self.artifacts)
            and all(a.identical for a in self.artifacts)
        )

    @property
    def differing(self) -> list[str]:
        return [a.file for a in self.artifacts if not a.identical]

    @property
    def figures_agree(self) -> bool:
        return self.problem is None and all(f.within is not False for f in self.figures)


@dataclass(frozen=True)
class FrameworkResult:
    framework: str
    variants: list[VariantResult]
    context: list[ContextDiff]  # recorded context that differs between the runs
    problem: str | None = None  # the rerun of this framework failed


@dataclass(frozen=True)
class Reproduction:
    original: Path
    rerun: Path
    checks: list[FileCheck]
    frameworks: list[FrameworkResult] = field(default_factory=list)

    @property
    def damaged(self) -> list[FileCheck]:
        return [c for c in self.checks if c.status != "ok"]

    @property
    def reproduced(self) -> bool:
        return not self.reasons()

    def reasons(self) -> list[str]:
        """Why the run is not reproduced, one line each (empty: reproduced)."""
        out = [f"original damaged: {c.describe()}{self._hint(c)}" for c in self.damaged]
        for fw in self.frameworks:
            if fw.problem:
                out.append(f"{fw.framework}: {fw.problem}")
                continue
            for v in fw.variants:
                if v.problem:
                    out.append(f"{fw.framework} {v.variant}: {v.problem}")
                elif not v.bit_identical:
                    out.append(f"{fw.framework} {v.variant}: differs in {', '.join(v.differing)}")
        return out

    def _hint(self, check: FileCheck) -> str:
        """Say when the rerun made exactly the file on disk: then the record was altered."""
        for fw in self.frameworks:
            for v in fw.variants:
                for a in v.artifacts:
                    same = (fw.framework, v.variant, a.file) == (
                        check.framework,
                        check.variant,
                        check.file,
                    )
                    if same and check.actual_sha256 and a.new_sha256 == check.actual_sha256:
                        return " (the rerun made the file on disk: its recorded digest was edited)"
        return ""


def compare_runs(original: Original, rerun: RunDir, checks: list[FileCheck]) -> Reproduction:
    frameworks = [
        _framework(name, original.run.framework(name), old, rerun.framework(name))
        for name, old in original.metrics.items()
    ]
    return Reproduction(original.run.path, rerun.path, checks, frameworks)


def _framework(
    name: str, old_dir: FrameworkDir, old: MetricsFile, new_dir: FrameworkDir
) -> FrameworkResult:
    try:
        new = read_metrics(new_dir.metrics)
    except HarnessError as exc:
        return FrameworkResult(name, [], [], f"the rerun has no result ({exc.problem})")
    if new.outcome != "complete":
        why = f" ({new.error})" if new.error else ""
        return FrameworkResult(name, [], [], f"the rerun ended '{new.outcome}'{why}")
    variants = [
        _variant(name, variant, vm, new.variant(variant), old_dir, new_dir)
        for variant, vm in old.variants.items()
        if vm.status == "ok"
    ]
    return FrameworkResult(name, variants, context_differences(old.provenance, new.provenance))


def _variant(
    framework: str,
    variant: str,
    old: VariantMetrics,
    new: VariantMetrics | None,
    old_dir: FrameworkDir,
    new_dir: FrameworkDir,
) -> VariantResult:
    if new is None or new.status != "ok":
        why = "no result" if new is None else f"status '{new.status}' ({new.reason or '?'})"
        return VariantResult(framework, variant, [], [], [], f"the rerun has {why}")
    return VariantResult(
        framework,
        variant,
        _artifacts(old, new),
        _figures(old, new),
        [_latency(row, new, old_dir, new_dir) for row in old.latency],
    )


def _artifacts(old: VariantMetrics, new: VariantMetrics) -> list[ArtifactResult]:
    before = {a.file: a.sha256 for a in old.model_files()}
    after = {a.file: a.sha256 for a in new.model_files()}
    files = list(before) + [f for f in after if f not in before]
    return [ArtifactResult(f, before.get(f), after.get(f)) for f in files]


def _figures(old: VariantMetrics, new: VariantMetrics) -> list[Figure]:
    def pts(vm: VariantMetrics, attr: str) -> float | None:
        value = getattr(vm.accuracy, attr, None) if vm.accuracy else None
        return None if value is None else 100.0 * value

    old_size = old.size.bytes if old.size else None
    new_size = new.size.bytes if new.size else None
    figures = [
        Figure("top-1", "pts", pts(old, "top1"), pts(new, "top1"), TOP1_TOLERANCE_PTS),
        Figure(
            "agreement with fp32",
            "pts",
            pts(old, "agreement_with_fp32"),
            pts(new, "agreement_with_fp32"),
            AGREEMENT_TOLERANCE_PTS,
        ),
        Figure("size", "bytes", old_size, new_size, SIZE_TOLERANCE * (old_size or 0)),
    ]
    return [f for f in figures if f.old is not None]


def _latency(
    row: LatencyStats, new: VariantMetrics, old_dir: FrameworkDir, new_dir: FrameworkDir
) -> LatencyResult:
    match = new.latency_at(row.batch_size, row.threads) or new.latency_at(row.batch_size)
    if match is None:
        return LatencyResult(row.batch_size, row.threads, row.p50_ms, None, None)
    old_samples = load_samples(old_dir.path / row.samples_file if row.samples_file else None)
    new_samples = load_samples(new_dir.path / match.samples_file if match.samples_file else None)
    if old_samples is None or new_samples is None or row.p50_ms == 0:
        ratio = match.p50_ms / row.p50_ms if row.p50_ms else float("nan")
        band = Band(ratio, None, None)
    else:
        band = p50_ratio_band(old_samples, new_samples)
    return LatencyResult(row.batch_size, row.threads, row.p50_ms, match.p50_ms, band)
