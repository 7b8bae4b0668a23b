"""The run directory's layout, in one place: every path the CLI, backends, report and
``harness traces`` use comes from ``RunDir``.

results/<run-id>/spec.json              the resolved spec every framework ran
results/<run-id>/run.json               frameworks, dataset (path, digest), backend, GPUs
results/<run-id>/.lock                  the live process that owns the run (pid, host, start)
results/<run-id>/<framework>/           metrics.json, runner.log, artifacts/, traces/
results/<run-id>/<framework>.incomplete-<n>/   an earlier attempt set aside by --resume
results/<run-id>/report.md, report.html, results.csv, figures/

A run id is never reused: a new run gets a new directory, and a resumed run only
re-launches frameworks whose results are not complete or have a failed phase.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from harness.cli.options import RESULTS_FIX, check_run_id
from harness.run.owner_lock import may_be_alive, read_owner
from harness_contract.errors import HarnessError, MetricsError
from harness_contract.fs.atomic import write_text_atomic
from harness_contract.fs.oserrors import os_error
from harness_contract.layout import METRICS_FILE, FrameworkDir
from harness_contract.metrics import MetricsFile, read_metrics, write_metrics
from harness_contract.spec import ExperimentSpec, load_resolved_spec

SPEC_FILE = "spec.json"
RECORD_FILE = "run.json"
LOCK_FILE = ".lock"
SET_ASIDE_MARK = ".incomplete-"
# A metrics.json that said 'running' when the host could not record the real ending.
STALE_METRICS = "metrics.unfinished.json"


@dataclass(frozen=True)
class RunDir:
    path: Path

    # ---------------------------------------------------------------- paths
    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def spec_path(self) -> Path:
        return self.path / SPEC_FILE

    @property
    def record_path(self) -> Path:
        return self.path / RECORD_FILE

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def report_md(self) -> Path:
        return self.path / "report.md"

    @property
    def report_html(self) -> Path:
        return self.path / "report.html"

    @property
    def results_csv(self) -> Path:
        return self.path / "results.csv"

    @property
    def support_md(self) -> Path:
        return self.path / "support.md"

    @property
    def figures_dir(self) -> Path:
        return self.path / "figures"

    # A rerun's verdict (harness reproduce): for people, in a browser, for machines.
    @property
    def reproduction_md(self) -> Path:
        return self.path / "reproduction.md"

    @property
    def reproduction_html(self) -> Path:
        return self.path / "reproduction.html"

    @property
    def reproduction_json(self) -> Path:
        return self.path / "reproduction.json"

    def framework(self, name: str) -> FrameworkDir:
        return FrameworkDir(self.path / name)

    def framework_names(self) -> list[str]:
        """Frameworks with an output folder here (set-aside attempts left out), sorted."""
        if not self.path.is_dir():
            return []
        return sorted(
            p.name
            for p in self.path.iterdir()
            if p.is_dir() and SET_ASIDE_MARK not in p.name and p.name != self.figures_dir.name
        )

    def asked_frameworks(self) -> list[str]:
        """The frameworks the run was started for (from run.json; [] for a run made
        before run.json), so a framework that left nothing behind is still named."""
        from harness.run.record import StudyRecord

        try:
            record = StudyRecord.read(self.record_path)
        except HarnessError:
            return []
        return list(record.frameworks) if record else []

    def metrics_paths(self) -> list[Path]:
        """Every ``<framework>/metrics.json`` present, set-aside attempts left out."""
        return [
            p for name in self.framework_names() if (p := self.framework(name).metrics).is_file()
        ]

    def set_aside_path(self, name: str) -> Path:
        """The first free ``<framework>.incomplete-<n>`` name."""
        n = 1
        while (aside := self.path / f"{name}{SET_ASIDE_MARK}{n}").exists():
            n += 1
        return aside

    def set_aside_attempts(self, name: str) -> list[Path]:
        pattern = re.compile(re.escape(name + SET_ASIDE_MARK) + r"\d+$")
        return sorted(
            p for p in self.path.glob(f"{name}{SET_ASIDE_MARK}*") if pattern.match(p.name)
        )

    # ---------------------------------------------------------------- making and opening
    @cached_property
    def spec(self) -> ExperimentSpec:
        return load_resolved_spec(self.spec_path)

    @classmethod
    def create(cls, results_root: Path, spec: ExperimentSpec, run_id: str | None) -> RunDir:
        """A new run directory holding spec.json; never an existing one."""
        run = cls.reserve(results_root, spec, run_id)
        run.write_spec(spec)
        return run

    @classmethod
    def reserve(cls, results_root: Path, spec: ExperimentSpec, run_id: str | None) -> RunDir:
        """Make the new, empty run directory (the caller locks it, then writes spec.json)."""
        if run_id is not None:
            check_run_id(run_id)
        if results_root.exists() and not results_root.is_dir():
            raise HarnessError(
                f"--results {results_root} is a file, not a directory",
                "pass a directory for the run directories (it is created if missing)",
            )
        # A chosen id that exists is refused; a made-up one that does (two runs started
        # in the same millisecond that drew the same suffix) is drawn again.
        for _ in range(5):
            path = results_root / (run_id or new_run_id(spec))
            try:
                results_root.mkdir(parents=True, exist_ok=True)
                if not os.access(results_root, os.W_OK):
                    raise PermissionError(13, "Permission denied", str(results_root))
                path.mkdir()
            except FileExistsError:
                if run_id is None:
                    continue
                raise _exists_error(cls(path)) from None
            except OSError as exc:
                raise HarnessError(
                    f"cannot create results directory {path} ({exc.strerror})",
                    "pass a writable --results directory",
                ) from None
            return cls(path)
        raise _exists_error(cls(path))

    def write_spec(self, spec: ExperimentSpec) -> None:
        try:
            write_text_atomic(self.spec_path, spec.to_json())
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # leave no empty run behind (fails, rightly, if not empty)
            raise os_error(exc, self.spec_path, RESULTS_FIX) from None
        self.__dict__["spec"] = spec  # the cached property, already known

    @classmethod
    def open(cls, path: Path, writable: bool = True) -> RunDir:
        """An existing run directory (for --resume and ``harness report``); ``writable``
        False for a reader that never writes into it (``harness reproduce``)."""
        path = Path(path)
        if not path.exists():
            raise HarnessError(
                f"run directory {path} does not exist", "pass a results/<run-id> directory"
            )
        if not path.is_dir():
            raise HarnessError(
                f"{path} is a file, not a run directory", "pass the results/<run-id> directory"
            )
        run = cls(path)
        if not run.spec_path.is_file():
            raise HarnessError(
                f"{path} is not a run directory (no {SPEC_FILE})",
                "pass a results/<run-id> directory made by `harness compare` or `harness run`",
            )
        if writable and not os.access(path, os.W_OK):
            raise HarnessError(f"run directory {path} is not writable", "fix its permissions")
        return run

    # ---------------------------------------------------------------- a framework's state
    def read_framework(self, name: str) -> MetricsFile | None:
        try:
            return read_metrics(self.framework(name).metrics)
        except MetricsError:
            return None

    def is_complete(self, name: str) -> bool:
        """Finished with every phase ok or skipped: nothing for --resume to redo."""
        metrics = self.read_framework(name)
        return metrics is not None and metrics.outcome == "complete"

    def set_aside(self, name: str) -> Path | None:
        """Move an earlier attempt out of the way (never delete it: its log explains it)."""
        current = self.framework(name).path
        if not current.exists():
            return None
        aside = self.set_aside_path(name)
        current.rename(aside)
        return aside

    def mark_unfinished(
        self, name: str, status: str, reason: str, replace: tuple = ()
    ) -> str | None:
        """After a crash, kill or timeout the runner may have left status 'running' (or,
        stopped on a timeout, 'interrupted'): record what really happened. When that
        cannot be written (a full disk), the stale file is renamed (which needs no room),
        so no metrics.json claims 'running'; what happened is returned, else None."""
        path = self.framework(name).metrics
        try:
            metrics = read_metrics(path)
        except MetricsError:
            return None
        if metrics.status == "running" or metrics.status in replace:
            was = metrics.status
            metrics.status = status  # type: ignore[assignment]
            metrics.error = reason
            try:
                write_metrics(path, metrics)
            except OSError as exc:
                problem = os_error(exc, path).problem
                stale = path.with_name(STALE_METRICS)
                try:
                    path.replace(stale)
                except OSError:
                    return f"{problem}, so it still says '{was}'"
                return f"{problem}; its results so far are kept in {stale.name}"
        return None


def _exists_error(run: RunDir) -> HarnessError:
    owner = read_owner(run.lock_path)
    if owner is not None and may_be_alive(owner):
        return HarnessError(
            f"run directory {run.path} already exists and is in use by {owner.describe()}",
            "choose another --run-id",
        )
    return HarnessError(
        f"run directory {run.path} already exists",
        f"choose another --run-id, or continue that run with --resume {run.path}",
    )


def new_run_id(spec: ExperimentSpec) -> str:
    """``20261126-223113-482-smoke-3f9a``: the time to the millisecond (so ids sort by
    start), the preset, and a random suffix, so two runs started together never collide."""
    now = datetime.now(UTC)
    stamp = f"{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}"
    return f"{stamp}-{_safe_name(spec.name)}-{secrets.token_hex(2)}"


def _safe_name(name: str) -> str:
    """A spec name as part of a directory name (a spec file may name itself anything)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name).strip("-.") or "custom"


__all__ = ["METRICS_FILE", "RunDir", "SET_ASIDE_MARK", "SPEC_FILE"]
