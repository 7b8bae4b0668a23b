"""Run the chosen frameworks one after another in one run directory, then report.

Frameworks run sequentially on purpose: two studies sharing a machine would
slow each other down and make every timing meaningless.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .backends import Backend, LaunchRequest, LaunchResult
from .frameworks import FrameworkEntry
from .progress import RunDisplay
from .runs import RunDir


def run_frameworks(
    run: RunDir,
    frameworks: Sequence[FrameworkEntry],
    backend: Backend,
    data_dir: Path,
    display: RunDisplay,
    timeout_s: float | None = None,
) -> list[LaunchResult]:
    results: list[LaunchResult] = []
    for fw in frameworks:
        if run.is_complete(fw.name):
            display.say(f"[bold]{fw.name}[/]: already complete in {run.path}, kept as is")
            continue
        aside = run.set_aside_incomplete(fw.name)
        if aside is not None:
            display.say(f"{fw.name}: earlier unfinished attempt moved to {aside.name}")
        display.begin(fw.name)
        request = LaunchRequest(
            fw, run.spec_path, data_dir, run.framework_dir(fw.name), run.run_id, timeout_s
        )
        result = backend.launch(request, display.on_event)
        results.append(result)
        if result.outcome != "complete":
            status = "interrupted" if result.outcome == "interrupted" else "failed"
            run.mark_unfinished(fw.name, status, result.message)
            display.say(f"[red]{fw.name}: {result.message}[/] (log: {result.log_path})")
        if result.outcome == "interrupted":
            break  # the user asked to stop: don't start the next framework
    return results
