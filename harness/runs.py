"""A run directory: where one study's results land, and the rules that keep them safe.

results/<run-id>/spec.json             the resolved spec every framework ran
results/<run-id>/<framework>/...       metrics.json, artifacts/, runner.log
results/<run-id>/report.md, results.csv

A run id is never reused: a new run gets a new directory, and a resumed run
only re-launches frameworks whose results are not complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness_contract.atomic import write_text_atomic
from harness_contract.errors import HarnessError, MetricsError
from harness_contract.metrics import read_metrics, write_metrics
from harness_contract.spec import ExperimentSpec, load_resolved_spec

SPEC_FILE = "spec.json"


@dataclass(frozen=True)
class RunDir:
    path: Path
    spec: ExperimentSpec

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def spec_path(self) -> Path:
        return self.path / SPEC_FILE

    def framework_dir(self, framework: str) -> Path:
        return self.path / framework

    def is_complete(self, framework: str) -> bool:
        metrics = self.framework_dir(framework) / "metrics.json"
        try:
            return read_metrics(metrics).status == "complete"
        except MetricsError:
            return False

    def set_aside_incomplete(self, framework: str) -> Path | None:
        """Keep an unfinished attempt (its log explains what happened) out of the way."""
        current = self.framework_dir(framework)
        if not current.exists():
            return None
        n = 1
        while (aside := self.path / f"{framework}.incomplete-{n}").exists():
            n += 1
        current.rename(aside)
        return aside

    def mark_unfinished(self, framework: str, status: str, reason: str) -> None:
        """After a crash or kill the runner may have left status 'running': say what happened."""
        path = self.framework_dir(framework) / "metrics.json"
        try:
            metrics = read_metrics(path)
        except MetricsError:
            return
        if metrics.status == "running":
            metrics.status = status  # type: ignore[assignment]
            metrics.error = reason
            write_metrics(path, metrics)


def new_run_id(spec: ExperimentSpec) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{spec.name}"


def create_run(results_root: Path, spec: ExperimentSpec, run_id: str | None) -> RunDir:
    run_id = run_id or new_run_id(spec)
    if "/" in run_id or run_id in (".", ".."):
        raise HarnessError(f"invalid run id '{run_id}'", "use a plain name without slashes")
    path = results_root / run_id
    try:
        results_root.mkdir(parents=True, exist_ok=True)
        if not os.access(results_root, os.W_OK):
            raise PermissionError(13, "Permission denied")
        path.mkdir()
    except FileExistsError:
        raise HarnessError(
            f"run directory {path} already exists",
            f"choose another --run-id, or continue it with --resume {path}",
        ) from None
    except OSError as exc:
        raise HarnessError(
            f"cannot create results directory {path} ({exc.strerror})",
            "pass a writable --results directory",
        ) from None
    write_text_atomic(path / SPEC_FILE, spec.to_json())
    return RunDir(path, spec)


def open_run(path: Path) -> RunDir:
    if not (path / SPEC_FILE).is_file():
        raise HarnessError(
            f"{path} is not a run directory (no {SPEC_FILE})",
            "pass a results/<run-id> directory made by `harness compare`",
        )
    if not os.access(path, os.W_OK):
        raise HarnessError(f"run directory {path} is not writable", "fix its permissions")
    return RunDir(path, load_resolved_spec(path / SPEC_FILE))


def spec_summary(spec: ExperimentSpec) -> str:
    return json.dumps({"preset": spec.name, "digest": spec.digest(), "seed": spec.seed})
