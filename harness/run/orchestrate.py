"""Run the chosen frameworks one after another in one run directory.

Frameworks run sequentially on purpose: two studies sharing a machine would
slow each other down and make every timing meaningless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from harness.launch import Backend, LaunchRequest, LaunchResult
from harness.launch.base import timed_out_reason
from harness.run.progress import RunDisplay
from harness.run.rundir import RunDir
from harness_contract.frameworks import Framework


def run_frameworks(
    run: RunDir,
    frameworks: Sequence[Framework],
    backend: Backend,
    data_dir: Path,
    display: RunDisplay,
    timeout_s: float | None = None,
    allow_untested_versions: bool = False,
) -> list[LaunchResult]:
    results: list[LaunchResult] = []
    for fw in frameworks:
        if run.is_complete(fw.name):
            display.say(f"[bold]{fw.name}[/]: already complete in {run.path}, kept as is")
            continue
        # Unfinished, or finished with a failed phase: retried, the earlier attempt kept.
        aside = run.set_aside(fw.name)
        if aside is not None:
            display.say(f"{fw.name}: earlier attempt moved to {aside.name}")
        display.begin(fw.name)
        out = run.framework(fw.name)
        request = LaunchRequest(
            fw, run.spec_path, data_dir, out.path, run.run_id, timeout_s, allow_untested_versions
        )
        result = record_outcome(run, backend.launch(request, display.on_event), timeout_s)
        results.append(result)
        if result.outcome == "interrupted":
            break  # the user asked to stop: don't start the next framework
        if result.outcome != "complete":
            display.say(f"[red]{fw.name}: {result.message}[/] (log: {result.log_path})")
    return results


def record_outcome(run: RunDir, result: LaunchResult, timeout_s: float | None) -> LaunchResult:
    """metrics.json is never left 'running' by a failure the host saw; a timeout is
    recorded as one (the runner, stopped by SIGTERM, calls itself 'interrupted'). The
    result, its message extended when the ending could not be recorded (a full disk)."""
    if result.outcome == "timed_out":
        note = run.mark_unfinished(
            result.framework, "failed", timed_out_reason(timeout_s), replace=("interrupted",)
        )
    elif result.outcome == "interrupted":
        note = run.mark_unfinished(result.framework, "interrupted", result.message)
    elif result.outcome != "complete":
        note = run.mark_unfinished(result.framework, "failed", result.message)
    else:
        note = None
    return result if note is None else replace(result, message=f"{result.message}; {note}")
