"""The versioned ``metrics.json`` schema every runner writes and the host reads.

Validated on write and on read; written atomically. Units are in the field names
(``_s``, ``_ms``, ``_bytes``, fractions in [0, 1]). Every figure that depends on
where it was taken carries its ``device`` and ``threads``. docs/metrics.md
describes the fields; ``harness schema`` prints the JSON Schema.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError

from harness_contract.errors import MetricsError
from harness_contract.fs.atomic import write_json_atomic
from harness_contract.layers.error import LayerAnalysis
from harness_contract.metrics.census import OpCensus
from harness_contract.metrics.figures import (
    AccuracyStats,
    ArtifactDigest,
    ConversionStats,
    LatencyStats,
    MemoryStats,
    ProfileStats,
    SizeStats,
    TrainingStats,
)
from harness_contract.strict import Strict

# 2: artifact digests per variant, the image identity and determinism switches in the
# provenance. 3: each variant's runtime and its rungs on other runtimes; the support
# matrix; the per-layer analysis of int8 variants. Files of every version listed in
# READABLE_VERSIONS still load.
SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
VARIANTS = ("baseline", "ptq", "qat")
VariantName = Literal["baseline", "ptq", "qat"]


class RungMetrics(Strict):
    """One variant run on another deployable runtime (harness_contract.runtimes), measured
    the same way as the variant itself: accuracy on the test split (agreement with the
    framework's reference fp32), size, latency. schema 3."""

    runtime: str  # a runtime slug of the framework table (harness_contract.frameworks)
    precision: Literal["fp32", "int8"]
    # unavailable: this machine cannot run it (no compiler, not installed), with the reason;
    # skipped: not asked for in the spec.
    status: Literal["ok", "failed", "unavailable", "skipped"]
    reason: str | None = None
    accuracy: AccuracyStats | None = None
    # Compiling, lowering or converting for this runtime: a deployment cost, in seconds.
    compile_s: float | None = Field(default=None, ge=0)
    # Latency batch size -> seconds of the model made for that batch alone (Inductor: a
    # static-shape compile per batch, on top of compile_s); None: the runtime serves every
    # batch from the one lowered model. Optional: older files load.
    compile_s_by_batch: dict[int, Annotated[float, Field(ge=0)]] | None = None
    # A runtime that needs its own quantized model (ExecuTorch's XNNPACKQuantizer) records
    # its own calibration or QAT fine-tuning here.
    conversion: ConversionStats | None = None
    training: TrainingStats | None = None
    size: SizeStats | None = None
    latency: list[LatencyStats] = Field(default_factory=list)
    artifacts: list[ArtifactDigest] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    # The lowered program's ops by family and precision (None: not counted).
    ops: OpCensus | None = None


class VariantMetrics(Strict):
    variant: VariantName
    # unsupported: the framework cannot take this phase for this model (a framework limit,
    # a finding; not a failure): the reason holds its own error and the workaround.
    status: Literal["ok", "failed", "skipped", "unsupported"]
    precision: Literal["fp32", "int8"]
    reason: str | None = None  # why it failed, was skipped or is unsupported
    accuracy: AccuracyStats | None = None
    training: TrainingStats | None = None
    conversion: ConversionStats | None = None
    size: SizeStats | None = None
    latency: list[LatencyStats] = Field(default_factory=list)
    memory: MemoryStats | None = None
    # Profiler passes, apart from every timed figure above (a profiler perturbs timings).
    profiles: list[ProfileStats] = Field(default_factory=list)
    # Every model file this variant saved, with its digest (schema 2).
    artifacts: list[ArtifactDigest] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    # The runtime the figures above were taken on (schema 3; None in older files), and the
    # same variant on the framework's other runtimes, in ladder order.
    runtime: str | None = None
    rungs: list[RungMetrics] = Field(default_factory=list)
    # int8 variants: the per-layer quantization error and the keep-float what-if
    # (schema 3; None when analysis.enabled is false or the variant is fp32).
    layers: LayerAnalysis | None = None
    # The model's ops by family, int8 against float (None: not counted, or older files).
    ops: OpCensus | None = None

    def latency_at(self, batch_size: int, threads: int | None = None) -> LatencyStats | None:
        """The row at this batch size; threads None: the run's own thread count (listed first)."""
        return next(
            (
                lat
                for lat in self.latency
                if lat.batch_size == batch_size and (threads is None or lat.threads == threads)
            ),
            None,
        )

    def profile(self, kind: str) -> ProfileStats | None:
        return next((p for p in self.profiles if p.kind == kind), None)

    def model_files(self) -> list[ArtifactDigest]:
        """Every model file this variant saved: its own, then each runtime rung's (.pt2,
        .pte, fp32 .tflite); a reproduction checks them all bit for bit."""
        return [*self.artifacts, *(a for rung in self.rungs for a in rung.artifacts)]


class DatasetInfo(Strict):
    path: str
    kind: Literal["real", "synthetic"]
    train_images: int
    test_images: int
    # sha256 over the batch files, so a result names exactly the data it saw.
    digest: str


class ImageIdentity(Strict):
    """The container image a runner ran in, as fields rather than free text."""

    repository: str  # e.g. "ghcr.io/org/quant-harness-pytorch"
    tag: str | None = None
    # The registry digest it was pulled or pushed as: "repo@sha256:<64 hex>"; None for an
    # image that never went through a registry (a local build).
    digest: str | None = Field(default=None, pattern=r"^[^@\s]+@sha256:[0-9a-f]{64}$")
    id: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")  # the local image id


class UntestedVersion(Strict):
    """A required package the runner was not tested with (docs/versions.md)."""

    package: str  # the distribution name, as pinned: "torch", "tf-keras"
    installed: str  # e.g. "2.11.0+cu130"
    tested: str  # the pin, e.g. "2.13.0"


class Provenance(Strict):
    harness_version: str
    framework_versions: dict[str, str]
    python: str
    platform: str
    hostname: str
    runtime: str  # "local (<interpreter>)", or "docker image <ref> (<id>)"
    # Who ran it and what network it saw: a container must show a non-root uid and ["lo"].
    uid: int | None = None
    network_interfaces: list[str] = Field(default_factory=list)
    cpu_model: str
    cpu_flags: list[
        str
    ]  # the ISA features that matter for int8: avx2, avx512f, avx512_vnni, amx...
    cpu_count: int
    threads: int
    device: str  # where training ran: "cpu" or "cuda:0 (<gpu name>)"
    gpu: str | None = None
    cuda: str | None = None
    cudnn: str | None = None
    gpu_driver: str | None = None
    # Set by the Docker backend (schema 2); None when the runner ran on the host.
    image: ImageIdentity | None = None
    # What decides bit-exactness besides versions, threads and CPU: the framework's
    # determinism switches as the runner set them, name -> value (schema 2).
    determinism: dict[str, str] = Field(default_factory=dict)
    # Required packages at another major.minor than the runner was tested with, and
    # whether the user allowed that (--allow-untested-versions). Empty: the tested
    # versions. Listed but not allowed: the study ran without the runner's check (driven
    # in-process, as the GPU tier does).
    untested_versions: list[UntestedVersion] = Field(default_factory=list)
    untested_versions_allowed: bool = False


class ProbeResult(Strict):
    """One capability of the paper's Table IV, probed at the installed versions."""

    probe: str  # a slug of harness_contract.study.support.PROBES
    area: str  # "hardware", "profiler", "quantization", "analysis"
    question: str
    # "not probed": this machine cannot tell (no GPU); "timed out": stopped at its bound.
    outcome: Literal["yes", "no", "not probed", "timed out"]
    detail: str | None = None  # the exact error or the reason; what worked, for a yes
    seconds: float | None = Field(default=None, ge=0)


class SupportMatrix(Strict):
    """What the runner found it can and cannot do (schema 3)."""

    versions: dict[str, str]
    timeout_s: float = Field(gt=0)
    probes: list[ProbeResult] = Field(default_factory=list)


# A study that ran to its end but in which some phase failed: the CLI exits 1 for it.
COMPLETE_WITH_FAILURES = "complete with failures"


class ModelInfo(Strict):
    """The network the study ran (the spec's ``model``), as a report names it."""

    arch: str  # the spec's model.arch: "resnet18", "vit"
    title: str  # "ResNet10 (nobn, width x0.25)", "ViT (4 blocks, width 64, 4 heads, patch 4)"
    parameters: int = Field(ge=0)


class MetricsFile(Strict):
    schema_version: Literal[1, 2, 3] = SCHEMA_VERSION
    framework: str
    status: Literal["running", "complete", "failed", "interrupted"]
    error: str | None = None
    run_id: str
    spec_name: str
    spec_digest: str
    seed: int
    started_at: str
    updated_at: str
    provenance: Provenance
    dataset: DatasetInfo
    # "shared:<digest>" when the model started from the shared initial weights (equal
    # digests: identical starting points); "framework-default:<digest>" when the framework
    # drew them with its own initializers ("framework-default" alone in older files).
    initial_weights: str = "unknown"
    # The network (None in files written before the ViT: those ran the ResNet).
    model: ModelInfo | None = None
    variants: dict[str, VariantMetrics] = Field(default_factory=dict)
    # The support probes (schema 3); None when switched off or not reached.
    support: SupportMatrix | None = None

    def variant(self, name: str) -> VariantMetrics | None:
        return self.variants.get(name)

    def failed_phases(self) -> list[str]:
        """Phases that ran and failed (out of memory, NaN loss, a conversion error...)."""
        return [name for name, v in self.variants.items() if v.status == "failed"]

    def failures(self) -> list[tuple[str, str]]:
        """Every failed phase and every failed runtime rung ("ptq on inductor"), with its
        reason. A rung that is merely unavailable here (no compiler) is not a failure."""
        out = []
        for name, v in self.variants.items():
            if v.status == "failed":
                out.append((name, v.reason or "no reason recorded"))
            out += [
                (f"{name} on {r.runtime}", r.reason or "no reason recorded")
                for r in v.rungs
                if r.status == "failed"
            ]
        return out

    @property
    def outcome(self) -> str:
        """The one status every host view shows: a finished study with a failed phase or
        rung is "complete with failures", never "complete"."""
        if self.status == "complete" and self.failures():
            return COMPLETE_WITH_FAILURES
        return self.status


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_metrics(path: Path, metrics: MetricsFile) -> None:
    """Validate, stamp ``updated_at`` and write atomically."""
    metrics.updated_at = now_iso()
    data = metrics.model_dump(mode="json")
    try:
        MetricsFile.model_validate(data)
    except ValidationError as exc:  # a runner bug, not a user error: fail loudly
        raise MetricsError(f"refusing to write invalid metrics to {path}: {exc}") from None
    write_json_atomic(Path(path), data)


def read_metrics(path: Path) -> MetricsFile:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise MetricsError(f"{path} does not exist", "run the framework first") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MetricsError(f"{path} is not valid JSON ({exc})", "rerun that framework") from None
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version not in READABLE_VERSIONS:
        raise MetricsError(
            f"{path} has schema_version {version!r}; this harness reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}",
            "re-render it with the harness version that wrote it",
        )
    try:
        return MetricsFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MetricsError(
            f"{path} does not match the metrics schema at '{where}': {first['msg']}",
            "rerun that framework",
        ) from None


def json_schema() -> dict:
    return MetricsFile.model_json_schema()
