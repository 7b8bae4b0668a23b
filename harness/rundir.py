"""The run directory's layout, in one place: every path the CLI, backends, report and
``harness traces`` use comes from ``RunDir``.

results/<run-id>/spec.json              the resolved spec every framework ran
results/<run-id>/.lock                  the live process that owns the run (pid, host, start)
results/<run-id>/<framework>/           metrics.json, runner.log, artifacts/, traces/
results/<run-id>/<framework>.incomplete-<n>/   an unfinished attempt set aside by --resume
results/<run-id>/report.md, report.html, results.csv, figures/
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness_contract.layout import METRICS_FILE, FrameworkDir

SPEC_FILE = "spec.json"
LOCK_FILE = ".lock"
SET_ASIDE_MARK = ".incomplete-"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def spec_path(self) -> Path:
        return self.path / SPEC_FILE

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
    def figures_dir(self) -> Path:
        return self.path / "figures"

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


__all__ = ["METRICS_FILE", "RunDir", "SET_ASIDE_MARK", "SPEC_FILE"]
