"""The layout of one framework's output folder, shared by the runner that writes it and
the host that reads it: ``<run>/<framework>/{metrics.json, runner.log, artifacts/, traces/}``.

The run directory around it (spec.json, the report, the lock) is ``harness.run.rundir.RunDir``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

METRICS_FILE = "metrics.json"
LOG_FILE = "runner.log"
ARTIFACTS_DIR = "artifacts"
TRACES_DIR = "traces"


@dataclass(frozen=True)
class FrameworkDir:
    """Where one framework's results live; every path under it comes from here."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def log(self) -> Path:
        return self.path / LOG_FILE

    @property
    def artifacts(self) -> Path:
        return self.path / ARTIFACTS_DIR

    @property
    def traces(self) -> Path:
        return self.path / TRACES_DIR

    def relative(self, path: Path) -> str:
        """How metrics.json names a file of this folder (relative, so the run can move)."""
        return str(Path(path).relative_to(self.path))
