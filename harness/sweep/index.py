"""The sweep directory and its index: which points exist, how each ended, where it ran.

results/<sweep-id>/
  sweep.json          the sweep spec and the executor settings it started with
  index.json          one record per point (status, attempts, reason, node, files left there)
  points/<point>/     an ordinary run directory per point (``harness report`` reads it alone)
  attempts/           failed attempts moved aside before a retry (kept for their logs)
  logs/<point>.log    each point's harness output, attempt after attempt
  report.md/.html, stats.csv, stats.json, figures/   the aggregate
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.cli.options import check_run_id
from harness.sweep.plan import Point, SweepSpec
from harness_contract.errors import HarnessError
from harness_contract.fs.atomic import write_json_atomic

# pending: not run yet (or set back by a resume); running: handed to the executor;
# ok: the point's run ended 0; failed: its last attempt failed (reason says why);
# interrupted: cancelled by Ctrl-C before it finished.
STATUSES = ("pending", "running", "ok", "failed", "interrupted")
RESUME_FIX = "run `harness sweep --resume {dir}`"


@dataclass
class PointRecord:
    name: str
    framework: str
    seed: int
    cell: list[list[Any]]  # [[key, value], ...] as JSON keeps it
    status: str = "pending"
    attempts: int = 0
    exit_code: int | None = None
    reason: str | None = None  # why the last attempt failed
    failures: list[str] = field(default_factory=list)  # every failed attempt's reason
    node: str | None = None  # where the last attempt ran (host / Ray node address)
    wall_s: float | None = None
    # Files that stayed where the point ran (model files, traces) and where they are.
    left_on_node: str | None = None
    left_files: int = 0
    left_bytes: int = 0

    @property
    def point(self) -> Point:
        return Point(self.name, self.framework, self.seed, tuple((k, v) for k, v in self.cell))


@dataclass
class SweepSettings:
    """How the sweep runs; recorded so --resume runs the rest the same way."""

    executor: str = "local"
    parallel: int = 1
    threads: int = 1
    backend: str = "local"
    gpus_per_point: float = 0
    data: str | None = None
    timeout: float | None = None
    retries: int = 1
    address: str | None = None
    fetch_all: bool = False


class SweepDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    points_dir = property(lambda self: self.path / "points")
    attempts_dir = property(lambda self: self.path / "attempts")
    logs_dir = property(lambda self: self.path / "logs")
    spec_path = property(lambda self: self.path / "sweep.json")
    index_path = property(lambda self: self.path / "index.json")
    lock_path = property(lambda self: self.path / ".lock")  # its owner (harness.run.owner_lock)
    report_md = property(lambda self: self.path / "report.md")
    report_html = property(lambda self: self.path / "report.html")
    stats_csv = property(lambda self: self.path / "stats.csv")
    stats_json = property(lambda self: self.path / "stats.json")
    figures_dir = property(lambda self: self.path / "figures")

    def point_dir(self, name: str) -> Path:
        return self.points_dir / name

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    @classmethod
    def create(cls, results: Path, sweep_id: str | None) -> SweepDir:
        if sweep_id is not None:
            check_run_id(sweep_id, "--sweep-id")  # every point's runner and path carry it
        name = sweep_id or _new_sweep_id()
        path = Path(results) / name
        if path.exists():
            raise HarnessError(
                f"sweep directory {path} already exists",
                f"pick another --sweep-id, or finish it with harness sweep --resume {path}",
            )
        path.mkdir(parents=True)
        for sub in ("points", "logs"):
            (path / sub).mkdir()
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> SweepDir:
        sweep = cls(path)
        if not sweep.spec_path.is_file() or not sweep.index_path.is_file():
            raise HarnessError(
                f"{path} is not a sweep directory (no sweep.json and index.json)",
                "pass a results/<sweep-id> directory made by harness sweep",
            )
        return sweep

    # ------------------------------------------------------------ records

    def write_spec(self, spec: SweepSpec, settings: SweepSettings) -> None:
        write_json_atomic(self.spec_path, {"spec": spec.to_dict(), "settings": asdict(settings)})

    def read_spec(self) -> tuple[SweepSpec, SweepSettings]:
        raw = _read_json(self.spec_path)
        try:
            return SweepSpec.from_dict(raw["spec"]), SweepSettings(**raw["settings"])
        except (KeyError, TypeError) as exc:
            raise HarnessError(
                f"{self.spec_path} is not a sweep spec this harness wrote ({exc})",
                "start a new sweep",
            ) from None

    def write_index(self, records: dict[str, PointRecord]) -> None:
        body = {
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "points": [asdict(r) for r in records.values()],
        }
        write_json_atomic(self.index_path, body)

    def read_index(self) -> dict[str, PointRecord]:
        raw = _read_json(self.index_path)
        try:
            records = [PointRecord(**r) for r in raw["points"]]
        except (KeyError, TypeError) as exc:
            raise HarnessError(
                f"{self.index_path} is not a sweep index this harness wrote ({exc})",
                "start a new sweep",
            ) from None
        return {r.name: r for r in records}

    def set_aside(self, name: str) -> Path | None:
        """Move a point's unfinished directory out of points/ before it runs again, so
        points/ only ever holds the current attempt (the old one keeps its logs)."""
        source = self.point_dir(name)
        if not source.exists():
            return None
        self.attempts_dir.mkdir(exist_ok=True)
        target = self.attempts_dir / f"{name}.{time.strftime('%Y%m%d-%H%M%S')}"
        n = 1
        while target.exists():
            target = target.with_name(f"{target.name}-{n}")
            n += 1
        shutil.move(str(source), target)
        return target


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path} cannot be read ({exc})", "start a new sweep") from None
    if not isinstance(raw, dict):
        raise HarnessError(f"{path} is not a JSON object", "start a new sweep")
    return raw


def _new_sweep_id() -> str:
    """``sweep-20261126-223113-482-3f9a``: the start to the millisecond (ids sort by start)
    and a random suffix, so two sweeps started together never collide."""
    now = datetime.now(UTC)
    return f"sweep-{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}-{secrets.token_hex(2)}"
