"""Profiler passes as report rows: where the time went, per framework x variant x pass x device.

The breakdown table, its top-ops companion and the stacked-bar figure all draw these
rows, so report.md, report.html and figures/breakdown.svg cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness_contract.metrics import VARIANTS, MetricsFile, ProfileStats, TopOp

PASSES = ("inference", "train")  # inference first: the paper's observations are about it


@dataclass(frozen=True)
class PassBreakdown:
    """One profiler pass on one device (cpu: host ops; gpu: kernels), or a pass without data."""

    framework: str
    variant: str
    precision: str
    kind: str  # "train" or "inference"
    status: str  # ok, unavailable, failed (ok without breakdown rows reads "no breakdown")
    device: str  # "cpu" or "gpu" for ok rows; the pass's device otherwise
    ran_on: str  # where the profiled work ran, e.g. "cpu" or "cuda:0 (NVIDIA H100)"
    threads: int
    steps: int
    batch_size: int
    tool: str | None = None
    reason: str | None = None
    shares: dict[str, float] = field(default_factory=dict)  # category -> fraction of device time
    total_ms: float | None = None  # self time of all profiled ops on this device, all steps
    top_ops: list[TopOp] = field(default_factory=list)

    @property
    def device_label(self) -> str:
        if self.status != "ok" or self.ran_on == self.device:
            return self.ran_on if self.status != "ok" else self.device
        return f"{self.device} ({self.ran_on})"

    @property
    def label(self) -> str:
        return f"{self.framework} {self.variant} {self.kind} ({self.device_label})"


def main_device(p: ProfileStats) -> str:
    """The device that did the work: the GPU when its kernels took any time, else the CPU."""
    return "gpu" if p.total_us.get("gpu", 0) > 0 else "cpu"


def _pass_rows(framework: str, variant: str, precision: str, p: ProfileStats) -> list:
    common = dict(
        framework=framework,
        variant=variant,
        precision=precision,
        kind=p.kind,
        ran_on=p.device,
        threads=p.threads,
        steps=p.steps,
        batch_size=p.batch_size,
        tool=p.tool,
    )
    devices = [d for d in ("gpu", "cpu") if any(o.device == d for o in p.breakdown)]
    if p.status != "ok" or not devices:
        status = p.status if p.status != "ok" else "no breakdown"
        reason = p.reason or ("the profiler recorded no ops" if p.status == "ok" else None)
        return [PassBreakdown(status=status, device=p.device, reason=reason, **common)]
    return [
        PassBreakdown(
            status="ok",
            device=device,
            shares={o.category: o.share for o in p.breakdown if o.device == device},
            total_ms=p.total_us[device] / 1000 if device in p.total_us else None,
            top_ops=[t for t in p.top_ops if t.device == device],
            **common,
        )
        for device in devices
    ]


def pass_breakdowns(metrics: list[MetricsFile]) -> list[PassBreakdown]:
    """Rows ordered pass, then variant, then framework: both frameworks' same pass side by side."""
    rows = []
    for kind in PASSES:
        for variant in VARIANTS:
            for m in metrics:
                v = m.variant(variant)
                p = v.profile(kind) if v is not None else None
                if p is not None:
                    rows += _pass_rows(m.framework, variant, v.precision, p)
    return rows


def category_share(p: ProfileStats | None, category: str) -> float | None:
    """A category's share on the pass's main device (None without a breakdown)."""
    if p is None or p.status != "ok" or not p.breakdown:
        return None
    device = main_device(p)
    return sum(o.share for o in p.breakdown if o.device == device and o.category == category)
