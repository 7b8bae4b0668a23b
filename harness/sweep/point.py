"""One point, run the way a user would: a ``harness run FRAMEWORK`` process writing an
ordinary run directory. A process per point isolates signals, locks and framework state,
and its exit code says how it ended (harness_contract.exit_codes.ExitCode).
Also: packing a finished run directory to ship it from a Ray node, large files left."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.launch.process import die_with_parent, stop_process
from harness.sweep.plan import Point
from harness_contract.errors import HarnessError
from harness_contract.exit_codes import ExitCode
from harness_contract.fs.archive import extract_inside
from harness_contract.metrics import read_metrics

# How every point's process starts when the sweep names no launcher; None: the harness CLI
# under the interpreter that runs the point, resolved there (on a Ray node, its own).
DEFAULT_LAUNCHER: tuple[str, ...] | None = None
STOP_GRACE_S = 60  # a runner saves its finished phases on SIGINT; then it is killed
LOG_TAIL_CHARS = 200_000


@dataclass(frozen=True)
class SpecText:
    """A spec file's contents, carried to wherever a point runs."""

    text: str
    suffix: str  # ".toml" or ".json": how the harness reads it

    @classmethod
    def read(cls, path: str | None) -> SpecText | None:
        return None if path is None else cls(Path(path).read_text(), Path(path).suffix)

    def write(self, folder: Path, stem: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}.spec{self.suffix}"
        path.write_text(self.text)
        return path


@dataclass(frozen=True)
class PointJob:
    """Everything a point's process needs, picklable so a Ray task can carry it."""

    point: Point
    attempt: int
    preset: str | None
    # The sweep's --spec file as text (and its suffix, .toml or .json): a node writes it
    # into its own folder, so no node needs the driver's files.
    spec: SpecText | None
    sets: list[str]  # the sweep's fixed overrides; the cell and seed come from the point
    threads: int
    backend: str = "local"
    gpus: str | None = None  # as --gpus; a Ray task fills in the GPUs Ray gave it
    data: str | None = None
    timeout: float | None = None
    # How the point's process starts; None: the harness CLI under the interpreter running
    # the point (a Ray node's own, resolved there: the driver's path may not exist on it).
    launcher: tuple[str, ...] | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to the process's environment
    # The driver's harness code (harness.sweep.code_digest); a node with other code refuses.
    code_digest: str | None = None

    @property
    def name(self) -> str:
        return self.point.name

    def argv(self, results: Path, spec_file: Path | None = None) -> list[str]:
        """The point's command; ``spec_file``: where ``spec`` was written on this node."""
        launcher = self.launcher or (sys.executable, "-m", "harness")
        args = [*launcher, "run", self.point.framework]
        if self.preset:
            args += ["--preset", self.preset]
        if spec_file is not None:
            args += ["--spec", str(spec_file)]
        for text in [*self.sets, *self.point.overrides()]:
            args += ["--set", text]
        args += ["--threads", str(self.threads), "--results", str(results)]
        args += ["--run-id", self.name, "--backend", self.backend]
        if self.gpus:
            args += ["--gpus", self.gpus]
        if self.data:
            args += ["--data", self.data]
        if self.timeout:
            args += ["--timeout", str(self.timeout)]
        return args

    def with_gpus(self, gpus: str | None) -> PointJob:
        return replace(self, gpus=gpus)


@dataclass(frozen=True)
class PointOutcome:
    exit_code: int | None  # None: the process never ran (the reason says why)
    reason: str | None  # None when it succeeded
    wall_s: float
    node: str
    left_on_node: str | None = None
    left_files: int = 0
    left_bytes: int = 0
    node_id: str | None = None  # the Ray node's id, where a Ray task ran it

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    @property
    def retryable(self) -> bool:
        """Bad input (2) fails the same way every time; an interrupt is the user's call."""
        return not self.ok and self.exit_code not in (ExitCode.USER_ERROR, ExitCode.INTERRUPTED)


def run_point(
    job: PointJob,
    results: Path,
    log: Path,
    node: str,
    on_start: Callable[[subprocess.Popen], None] | None = None,
    die_on_parent_exit: bool = False,
) -> PointOutcome:
    """Run the point's process to its end, its output appended to ``log``. Ctrl-C (a
    KeyboardInterrupt here) stops it cleanly and is raised again. ``die_on_parent_exit``
    (a Ray task, one thread) ends the process with the worker that started it."""
    results.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **job.env}
    spec_file = None if job.spec is None else job.spec.write(log.parent, job.name)
    argv = job.argv(results, spec_file)
    with log.open("a", encoding="utf-8") as out:
        out.write(f"== attempt {job.attempt} on {node}: {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=die_with_parent if die_on_parent_exit else None,
        )
        if on_start is not None:
            on_start(proc)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            stop(proc)
            raise
    reason = None if code == ExitCode.OK else failure_reason(log, code)
    return PointOutcome(code, reason, time.monotonic() - started, node)


def stop(proc: subprocess.Popen) -> None:
    """Ask the point's harness to stop (SIGINT: it saves finished phases), then insist."""
    stop_process(proc, signal.SIGINT, STOP_GRACE_S)


def failure_reason(log: Path, code: int) -> str:
    """The harness's own one-line error from the log's last attempt, else the exit code."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    attempt = text.rsplit("\n== attempt ", 1)[-1].splitlines()
    errors = [line[len("error: ") :] for line in attempt if line.startswith("error: ")]
    meaning = ExitCode(code).meaning if code in set(ExitCode) else f"exit code {code}"
    if errors:
        return f"{errors[-1]} (exit {code}: {meaning})"
    tail = next((line.strip() for line in reversed(attempt) if line.strip()), "")
    return f"exit {code}: {meaning}" + (f" (last output: {tail[:300]})" if tail else "")


# ---------------------------------------------------------------- shipping a run directory


def large_files(run_dir: Path) -> set[Path]:
    """Model files and profiler traces recorded in the run's metrics.json files: what
    stays on the node unless the sweep asks for everything."""
    found: set[Path] = set()
    for metrics_path in run_dir.glob("*/metrics.json"):
        try:
            metrics = read_metrics(metrics_path)
        except HarnessError:
            continue  # shipped as is; the report names the broken file
        fw_dir = metrics_path.parent
        for variant in metrics.variants.values():
            found.update(fw_dir / a.file for a in variant.artifacts)
            for profile in variant.profiles:
                if profile.trace:
                    trace = fw_dir / profile.trace
                    found.update(trace.rglob("*") if trace.is_dir() else [trace])
    return {p for p in found if p.is_file()}


def pack(run_dir: Path, fetch_all: bool) -> tuple[bytes, int, int]:
    """A gzip tarball of the run directory (without its large files unless
    ``fetch_all``), and how many files / bytes stayed behind."""
    left = set() if fetch_all else large_files(run_dir)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(run_dir.rglob("*")):
            if path.is_file() and path not in left:
                tar.add(path, arcname=str(path.relative_to(run_dir)), recursive=False)
    return buffer.getvalue(), len(left), sum(p.stat().st_size for p in left)


def unpack(archive: bytes, dest: Path) -> None:
    """Write a shipped run directory under ``dest`` (a fresh directory): plain files and
    folders inside it only, as ``pack`` writes (absolute paths and links are refused)."""
    dest.mkdir(parents=True, exist_ok=False)
    # A submitted sweep's driver runs on the images' Python (3.11.2, no tar filters).
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        extract_inside(tar, dest)
