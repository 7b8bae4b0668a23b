"""Where the time goes (breakdown and top ops per pass and device) and the traces, both
drawn from the run's profile pass records."""

from __future__ import annotations

from collections.abc import Sequence

from harness.report.model import Column, Figure, Row, Section, Table, one_line
from harness.report.sections_results import DEVICE, FRAMEWORK, THREADS, VARIANT
from harness.results.profile_passes import DeviceTime, ProfilePass, by_pass_then_variant
from harness_contract.study.breakdown import CATEGORIES

NO_PASSES = "No profiler passes were recorded."
TOP_OPS = 5


def breakdown_rows(passes: Sequence[ProfilePass]) -> list[tuple[ProfilePass, DeviceTime | None]]:
    """One row per pass and device (cpu: host ops; gpu: kernels); a pass without a
    breakdown gets one row that says why. Both frameworks' same pass side by side."""
    rows: list[tuple[ProfilePass, DeviceTime | None]] = []
    for p in by_pass_then_variant(list(passes)):
        rows += [(p, d) for d in p.devices] if p.devices else [(p, None)]
    return rows


def device_label(p: ProfilePass, d: DeviceTime | None) -> str:
    """The device a row is about, and where the work ran when that says more."""
    ran_on = p.device or ""
    if d is None or ran_on == d.device:
        return ran_on
    return f"{d.device} ({ran_on})"


def row_label(p: ProfilePass, d: DeviceTime | None) -> str:
    return f"{p.framework} {p.variant} {p.kind} ({device_label(p, d)})"


def breakdown_table(passes: Sequence[ProfilePass]) -> Table:
    columns = [
        Column("Pass"),
        VARIANT,
        FRAMEWORK,
        Column("Precision"),
        DEVICE,
        THREADS,
        *(Column(label, "%", "0.1") for label in CATEGORIES.values()),
        Column("Op self time", "ms", "0.2"),
        Column("Profiled", "steps x batch", align="left"),
        Column("Status"),
    ]
    rows = []
    for p, d in breakdown_rows(passes):
        shares = [d.share(c) * 100 if d else None for c in CATEGORIES]
        status = p.breakdown_status
        values = [p.kind, p.variant, p.framework, p.precision, device_label(p, d), p.threads]
        values += [*shares, d.total_ms if d else None, f"{p.steps} x {p.batch_size}"]
        values.append(status if d else f"{status}: see Traces")
        rows.append(Row(values, "ok" if d else "skipped"))
    how = (
        "share of profiled op self time by category, in %, per pass and device (cpu: host "
        "ops; gpu: kernels), summed over the profiled steps (after the profiler's wait and "
        "warm-up steps). Train passes run training steps at the training batch; inference "
        "passes run forward passes at measure.profile.inference_batch_size. Op self time is "
        "the total over all profiled steps with the profiler on: it is not comparable to the "
        "latency tables. Both frameworks' ops are sorted into categories by the same rules "
        "(harness_contract.study.breakdown); shares on one device add up to 100 %."
    )
    return Table(columns, rows, how, empty=NO_PASSES, wide=True)


def _short(name: str, width: int = 60) -> str:
    name = one_line(name)
    return name if len(name) <= width else name[: width - 1] + "…"


def top_ops_table(passes: Sequence[ProfilePass], top: int = TOP_OPS) -> Table:
    columns = [
        Column("Pass"),
        VARIANT,
        FRAMEWORK,
        DEVICE,
        Column(f"Top {top} ops by self time", "share %", align="left"),
    ]
    rows = [
        Row(
            [
                p.kind,
                p.variant,
                p.framework,
                device_label(p, d),
                "; ".join(f"{_short(op.name)} {op.share * 100:.1f}" for op in d.top_ops[:top]),
            ]
        )
        for p, d in breakdown_rows(passes)
        if d is not None and d.top_ops
    ]
    how = (
        "the ops with the most self time in each pass, with their share of that device's "
        "profiled op time, in %."
    )
    return Table(columns, rows, how, title="Top ops")


def traces_table(passes: Sequence[ProfilePass]) -> Table:
    columns = [
        FRAMEWORK,
        VARIANT,
        Column("Pass"),
        Column("Status"),
        DEVICE,
        Column("Tool"),
        Column("Trace"),
        Column("Size", "MiB", "0.2"),
        Column("Open with (or why there is none)"),
    ]
    rows = []
    for p in passes:
        opener = p.open_command(absolute=False)
        size = p.size_bytes / 2**20 if p.status == "ok" and p.size_bytes is not None else None
        why = opener or one_line(p.reason or "no reason recorded")
        values = [p.framework, p.variant, p.kind, p.status, p.device, p.tool, p.trace, size, why]
        rows.append(Row(values, "ok" if opener else "skipped"))
    how = (
        "every profiler pass, its trace (path relative to the run directory) and the command "
        "that opens it; the command harness traces RUN_DIR prints the same list with "
        "absolute paths (add --json for machine reading). Chrome/Perfetto JSON traces open in "
        "https://ui.perfetto.dev or chrome://tracing; TensorBoard log directories open in "
        "TensorBoard's Profile tab (needs tensorboard-plugin-profile). Where a pass has no "
        "trace, the last column says why."
    )
    return Table(columns, rows, how, empty=NO_PASSES, wide=True)


def breakdown(passes: Sequence[ProfilePass], figure: Figure | None) -> Section:
    t, tops = breakdown_table(passes), top_ops_table(passes)
    blocks: list = [figure, t] if figure is not None and t.rows else [t]
    if t.rows and tops.rows:
        blocks.append(tops)
    return Section("Where the time goes", blocks, t.how_to_read)


def traces(passes: Sequence[ProfilePass]) -> Section:
    t = traces_table(passes)
    return Section("Traces", [t], t.how_to_read)
