"""One record per profiler pass, shared by the report and ``harness traces``.

Every pass a runner recorded (framework x variant x train/inference) becomes one
``ProfilePass``: where its time went on each device (the breakdown the report's tables
and figure draw) and its trace on disk with the command that opens it, or the reason
there is none. A variant with no pass at all gets a record too (kind None), so a gap
is never silent. The report and the traces listing read these records; neither
summarises a ``ProfileStats`` on its own.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from harness_contract.fs.disk import size_on_disk
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import VARIANTS, MetricsFile, VariantMetrics
from harness_contract.metrics.figures import ProfileStats, TopOp

PERFETTO_URL = "https://ui.perfetto.dev"
TENSORBOARD_PLUGIN = "tensorboard-plugin-profile"
PASSES = ("inference", "train")  # the report's order: the paper's observations are inference's
NOT_PROFILED = "not profiled"


@dataclass(frozen=True)
class DeviceTime:
    """Where one pass's profiled op self time went on one device (cpu: host ops; gpu: kernels)."""

    device: str  # "cpu" or "gpu"
    shares: dict[str, float] = field(default_factory=dict)  # category -> fraction
    total_ms: float | None = None  # self time of all profiled ops here, all steps
    top_ops: list[TopOp] = field(default_factory=list)

    def share(self, category: str) -> float:
        return self.shares.get(category, 0.0)


@dataclass(frozen=True)
class ProfilePass:
    """One profiler pass of one variant, or a variant with none (``kind`` None)."""

    framework: str
    variant: str
    kind: str | None  # "train" or "inference"; None: the variant has no profiler pass
    # The profiler's own status (ok, unavailable, failed), or "not profiled".
    profiler_status: str
    # The trace's status: ok (on disk), missing (recorded, not on disk), no trace
    # (breakdown only), or the profiler status when that is not ok.
    status: str
    precision: str | None = None
    device: str | None = None  # where the profiled work ran, e.g. "cuda:0 (NVIDIA H100)"
    threads: int | None = None
    batch_size: int | None = None
    steps: int | None = None
    tool: str | None = None
    viewer: str | None = None
    trace: str | None = None  # relative to the run directory: "<framework dir>/traces/..."
    path: Path | None = None  # absolute, when the run directory is known
    size_bytes: int | None = None
    reason: str | None = None
    main_device: str = "cpu"  # the GPU when its kernels took any time, else the CPU
    devices: tuple[DeviceTime, ...] = ()  # breakdown per device, gpu first; () without one

    @property
    def label(self) -> str:
        return " / ".join(p for p in (self.framework, self.variant, self.kind) if p)

    @property
    def breakdown_status(self) -> str:
        """ok, unavailable, failed, or "no breakdown" (ok, but the profiler saw no ops)."""
        if self.profiler_status != "ok":
            return self.profiler_status
        return "ok" if self.devices else "no breakdown"

    def main(self) -> DeviceTime | None:
        """The breakdown on the main device (None without a breakdown)."""
        if not self.devices:
            return None
        found = next((d for d in self.devices if d.device == self.main_device), None)
        return found or DeviceTime(self.main_device)

    def open_command(self, absolute: bool = True) -> str | None:
        """The command that opens this trace (absolute path, or relative to the run dir)."""
        if self.status != "ok" or self.trace is None:
            return None
        where = str(self.path) if absolute and self.path is not None else self.trace
        return viewer_command(self.viewer, where)


def viewer_command(viewer: str | None, where: str) -> str:
    """TensorBoard log dirs open in TensorBoard's Profile tab; Chrome/Perfetto JSON in Perfetto."""
    if viewer == "tensorboard" or (viewer is None and not where.endswith((".json", ".json.gz"))):
        return (
            f"tensorboard --logdir {shlex.quote(where)} "
            f"(then the Profile tab; needs {TENSORBOARD_PLUGIN})"
        )
    return f"open {PERFETTO_URL} and load {where} (or chrome://tracing)"


def _devices(p: ProfileStats) -> tuple[DeviceTime, ...]:
    if p.status != "ok":
        return ()
    present = [d for d in ("gpu", "cpu") if any(o.device == d for o in p.breakdown)]
    return tuple(
        DeviceTime(
            device=d,
            shares={o.category: o.share for o in p.breakdown if o.device == d},
            total_ms=p.total_us[d] / 1000 if d in p.total_us else None,
            top_ops=[t for t in p.top_ops if t.device == d],
        )
        for d in present
    )


def _trace_state(p: ProfileStats, path: Path | None) -> tuple[str, str | None, int | None]:
    """(status, reason, size) of the pass's trace, checked on disk when its path is known."""
    status, reason, size = p.status, p.reason, p.trace_bytes
    if p.status != "ok":
        reason = reason or "no reason recorded"
    elif p.trace is None:
        status = "no trace"
        reason = reason or "the profiler kept no trace file (its breakdown is in the report)"
    elif path is not None and not path.exists():
        status = "missing"
        reason = "recorded in metrics.json but not on disk (moved or deleted)"
    if path is not None and path.exists():
        size = size_on_disk(path)
    return status, reason, size


def _pass(
    m: MetricsFile, v: VariantMetrics, p: ProfileStats, name: str, fw: FrameworkDir | None
) -> ProfilePass:
    path = (fw.path / p.trace).resolve() if fw is not None and p.trace else None
    status, reason, size = _trace_state(p, path)
    return ProfilePass(
        framework=m.framework,
        variant=v.variant,
        kind=p.kind,
        profiler_status=p.status,
        status=status,
        precision=v.precision,
        device=p.device,
        threads=p.threads,
        batch_size=p.batch_size,
        steps=p.steps,
        tool=p.tool,
        viewer=p.viewer,
        trace=f"{name}/{p.trace}" if p.trace else None,
        path=path,
        size_bytes=size,
        reason=reason,
        main_device="gpu" if p.total_us.get("gpu", 0) > 0 else "cpu",
        devices=_devices(p),
    )


def profile_passes(m: MetricsFile, fw: FrameworkDir | None = None) -> list[ProfilePass]:
    """Every profiler pass of one framework, in variant order (train before inference).

    With ``fw`` (the framework's folder) each trace is checked on disk and sized;
    without it the records say only what metrics.json recorded.
    """
    name = fw.name if fw is not None else m.framework
    records: list[ProfilePass] = []
    for variant in VARIANTS:
        v = m.variant(variant)
        if v is None:
            reason = f"variant not in metrics.json (run status: {m.status})"
        elif not v.profiles:
            reason = (
                f"variant {v.status}: {v.reason or 'no reason recorded'}"
                if v.status != "ok"
                else "no profiler pass recorded (measure.profile off, or a runner without one)"
            )
        else:
            order = {"train": 0, "inference": 1}
            for p in sorted(v.profiles, key=lambda p: order.get(p.kind, 2)):
                records.append(_pass(m, v, p, name, fw))
            continue
        records.append(
            ProfilePass(m.framework, variant, None, NOT_PROFILED, NOT_PROFILED, reason=reason)
        )
    return records


def by_pass_then_variant(passes: list[ProfilePass]) -> list[ProfilePass]:
    """Pass kind, then variant, then framework: both frameworks' same pass side by side."""
    return [
        p
        for kind in PASSES
        for variant in VARIANTS
        for p in passes
        if p.kind == kind and p.variant == variant
    ]
