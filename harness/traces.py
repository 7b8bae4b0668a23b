"""Where a run's profiler traces are and what opens each: ``harness traces RUN_DIR``.

Every profiler pass a runner recorded (framework x variant x train/inference) becomes
one ``TraceEntry``: a trace on disk with the command that opens it, or the reason
there is none (profiler unavailable or failed, file gone, variant never profiled).
The report's Traces section draws the same entries.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from harness_contract.disk import size_on_disk
from harness_contract.errors import HarnessError
from harness_contract.metrics import VARIANTS, MetricsFile, ProfileStats

PERFETTO_URL = "https://ui.perfetto.dev"
TENSORBOARD_PLUGIN = "tensorboard-plugin-profile"
NOT_A_RUN_FIX = "pass a results/<run-id> directory made by `harness compare` or `harness run`"


@dataclass(frozen=True)
class TraceEntry:
    """One profiler pass of one variant, or a variant with none."""

    framework: str
    variant: str
    kind: str | None  # "train" or "inference"; None: the variant has no profiler pass
    # ok (trace on disk), missing (recorded, not on disk), no trace (breakdown only),
    # unavailable / failed (the profiler's own status), not profiled (no pass at all)
    status: str
    device: str | None = None
    threads: int | None = None
    batch_size: int | None = None
    steps: int | None = None
    tool: str | None = None
    viewer: str | None = None
    trace: str | None = None  # relative to the run directory: "<framework dir>/traces/..."
    path: Path | None = None  # absolute, when the run directory is known
    size_bytes: int | None = None
    reason: str | None = None

    @property
    def label(self) -> str:
        return " / ".join(p for p in (self.framework, self.variant, self.kind) if p)

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


def _pass_entry(
    framework: str, variant: str, p: ProfileStats, fw_dir_name: str, fw_dir: Path | None
) -> TraceEntry:
    rel = f"{fw_dir_name}/{p.trace}" if p.trace else None
    path = (fw_dir / p.trace).resolve() if fw_dir is not None and p.trace else None
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
    return TraceEntry(
        framework=framework,
        variant=variant,
        kind=p.kind,
        status=status,
        device=p.device,
        threads=p.threads,
        batch_size=p.batch_size,
        steps=p.steps,
        tool=p.tool,
        viewer=p.viewer,
        trace=rel,
        path=path,
        size_bytes=size,
        reason=reason,
    )


def trace_entries(
    m: MetricsFile, fw_dir: Path | None = None, fw_dir_name: str | None = None
) -> list[TraceEntry]:
    """Every profiler pass of one framework, in variant order (train before inference).

    With ``fw_dir`` (the framework's directory) each trace is checked on disk and
    sized; without it the entries say only what metrics.json recorded.
    """
    name = fw_dir_name or (fw_dir.name if fw_dir is not None else m.framework)
    entries: list[TraceEntry] = []
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
                entries.append(_pass_entry(m.framework, variant, p, name, fw_dir))
            continue
        entries.append(TraceEntry(m.framework, variant, None, "not profiled", reason=reason))
    return entries


@dataclass(frozen=True)
class TraceListing:
    run_dir: Path
    entries: list[TraceEntry]
    problems: list[str]  # metrics.json files that could not be read


def list_traces(run_dir: Path) -> TraceListing:
    """Every trace of every framework in a run directory, checked on disk."""
    from .report.collect import collect_files  # the report package imports this module

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise HarnessError(f"{run_dir} is not a directory", NOT_A_RUN_FIX)
    if (
        run_dir.is_dir()
        and not (run_dir / "spec.json").is_file()
        and not any(run_dir.glob("*/metrics.json"))
    ):
        raise HarnessError(
            f"{run_dir} is not a run directory (no spec.json, no <framework>/metrics.json)",
            NOT_A_RUN_FIX,
        )
    found, problems = collect_files(run_dir)
    entries = [e for path, m in found for e in trace_entries(m, path.parent.resolve())]
    return TraceListing(run_dir.resolve(), entries, problems)


# ---------------------------------------------------------------- rendering


def _size_text(nbytes: int | None) -> str:
    if nbytes is None:
        return "size unknown"
    if nbytes >= 2**20:
        return f"{nbytes / 2**20:,.1f} MiB"
    return f"{nbytes / 2**10:,.1f} KiB"


def _summary(entries: list[TraceEntry]) -> str:
    passes = [e for e in entries if e.kind is not None]
    counts = Counter(e.status for e in passes)
    parts = [f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: kv[0] != "ok")]
    return f"{len(passes)} profiler pass(es)" + (f": {', '.join(parts)}" if parts else "")


def render_text(listing: TraceListing) -> str:
    """One block per entry: what it is, then the command that opens it or why there is none."""
    lines = [f"{listing.run_dir}: {_summary(listing.entries)}"]
    for problem in listing.problems:
        lines.append(f"unreadable {problem} (its traces are not listed)")
    for e in listing.entries:
        facts = [e.status]
        if e.device:
            facts.append(e.device)
        if e.threads:
            facts.append(f"{e.threads} thread(s)")
        if e.steps is not None and e.batch_size:
            facts.append(f"{e.steps} step(s) x batch {e.batch_size}")
        if e.status in ("ok", "missing") or e.size_bytes is not None:
            facts.append(_size_text(e.size_bytes) if e.status != "missing" else "not on disk")
        if e.tool:
            facts.append(e.tool)
        lines.append("")
        lines.append(f"{e.label}: {', '.join(facts)}")
        if e.path is not None and e.status in ("ok", "missing"):
            lines.append(f"  trace: {e.path}")
        command = e.open_command()
        if command:
            lines.append(f"  open:  {command}")
        if e.reason:
            lines.append(f"  why:   {' '.join(e.reason.split())}")
    if any(e.viewer == "tensorboard" and e.status == "ok" for e in listing.entries):
        lines += [
            "",
            f"TensorBoard traces need: pip install tensorboard {TENSORBOARD_PLUGIN}",
        ]
    return "\n".join(lines) + "\n"


def render_json(listing: TraceListing) -> str:
    entries = []
    for e in listing.entries:
        data = asdict(e)
        data["path"] = str(e.path) if e.path is not None else None
        data["open"] = e.open_command()
        entries.append(data)
    doc = {"run_dir": str(listing.run_dir), "traces": entries, "problems": listing.problems}
    return json.dumps(doc, indent=2) + "\n"
