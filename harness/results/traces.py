"""Where a run's profiler traces are and what opens each: ``harness traces RUN_DIR``.

Every profiler pass a runner recorded (framework x variant x train/inference) is one
``ProfilePass`` (harness.results.profile_passes): a trace on disk with the command that opens
it, or the reason there is none (profiler unavailable or failed, file gone, variant
never profiled). The report's Traces section draws the same records.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness.results.profile_passes import (
    PERFETTO_URL,
    TENSORBOARD_PLUGIN,
    ProfilePass,
    profile_passes,
    viewer_command,
)
from harness.results.run_metrics import read_run
from harness.run.rundir import RunDir
from harness_contract.errors import HarnessError
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import MetricsFile

__all__ = [
    "PERFETTO_URL",
    "TraceListing",
    "list_traces",
    "render_json",
    "render_text",
    "trace_entries",
    "viewer_command",
]

NOT_A_RUN_FIX = "pass a results/<run-id> directory made by `harness compare` or `harness run`"


def trace_entries(m: MetricsFile, fw_dir: Path | None = None) -> list[ProfilePass]:
    """Every profiler pass of one framework; with its folder, each trace checked on disk."""
    return profile_passes(m, FrameworkDir(fw_dir) if fw_dir is not None else None)


@dataclass(frozen=True)
class TraceListing:
    run_dir: Path
    entries: list[ProfilePass]
    problems: list[str]  # metrics.json files that could not be read
    failed: list[str] = field(default_factory=list)  # frameworks that left no metrics.json


def list_traces(run_dir: Path) -> TraceListing:
    """Every trace of every framework in a run directory, checked on disk."""
    run = RunDir(Path(run_dir))
    if run.path.exists() and not run.path.is_dir():
        raise HarnessError(f"{run.path} is not a directory", NOT_A_RUN_FIX)
    if run.path.is_dir() and not run.spec_path.is_file() and not run.metrics_paths():
        raise HarnessError(
            f"{run.path} is not a run directory (no spec.json, no <framework>/metrics.json)",
            NOT_A_RUN_FIX,
        )
    results = read_run(run.path)
    entries = [
        e for fw, m in results.found for e in profile_passes(m, FrameworkDir(fw.path.resolve()))
    ]
    failed = [f"{f.name}: {f.reason}" for f in results.failed]
    return TraceListing(run.path.resolve(), entries, results.problems, failed)


# ---------------------------------------------------------------- rendering


def _size_text(nbytes: int | None) -> str:
    if nbytes is None:
        return "size unknown"
    if nbytes >= 2**20:
        return f"{nbytes / 2**20:,.1f} MiB"
    return f"{nbytes / 2**10:,.1f} KiB"


def _summary(entries: list[ProfilePass]) -> str:
    passes = [e for e in entries if e.kind is not None]
    counts = Counter(e.status for e in passes)
    parts = [f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: kv[0] != "ok")]
    return f"{len(passes)} profiler pass(es)" + (f": {', '.join(parts)}" if parts else "")


def render_text(listing: TraceListing) -> str:
    """One block per entry: what it is, then the command that opens it or why there is none."""
    lines = [f"{listing.run_dir}: {_summary(listing.entries)}"]
    for problem in listing.problems:
        lines.append(f"unreadable {problem} (its traces are not listed)")
    for failed in listing.failed:
        lines.append(f"failed {failed} (no traces)")
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


# The JSON keys of one entry, in order (``open`` is added after them).
JSON_FIELDS = (
    "framework",
    "variant",
    "kind",
    "status",
    "device",
    "threads",
    "batch_size",
    "steps",
    "tool",
    "viewer",
    "trace",
    "path",
    "size_bytes",
    "reason",
)


def render_json(listing: TraceListing) -> str:
    entries = []
    for e in listing.entries:
        data = {name: getattr(e, name) for name in JSON_FIELDS}
        data["path"] = str(e.path) if e.path is not None else None
        data["open"] = e.open_command()
        entries.append(data)
    doc = {
        "run_dir": str(listing.run_dir),
        "traces": entries,
        "problems": listing.problems,
        "failed": listing.failed,
    }
    return json.dumps(doc, indent=2) + "\n"
