"""A sweep from options to its last line: plan and validate every point, start the
executor, run the points with retries, keep the index true after every event, and write
the aggregate report. Finished points are never recomputed; Ctrl-C keeps them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import typer

from harness.run import owner_lock as lock
from harness.sweep import point as point_module
from harness.sweep.code_digest import code_digest
from harness.sweep.index import PointRecord, SweepDir, SweepSettings
from harness.sweep.plan import Point, SweepSpec, build_sweep, expand, validate
from harness.sweep.point import PointJob, PointOutcome, SpecText
from harness_contract.errors import HarnessError
from harness_contract.exit_codes import ExitCode
from harness_contract.system import usable_cpus

EXECUTORS = ("local", "ray")
MAX_POINTS = 50  # above this a sweep needs --yes: a typo in a grid can mean days of work
# Environment variables every point's process gets from the submitting shell (on any node).
FORWARD_ENV_PREFIXES = ("HARNESS_",)
# Settings that change what a point's latency means (its threads, what runs beside it, the
# machine and container it runs in): a resume may not change them once points finished,
# or the report would pool unlike latencies into one interval.
LATENCY_SETTINGS = ("executor", "address", "parallel", "threads", "backend", "gpus_per_point")


def _say(line: str) -> None:
    typer.echo(line, err=True)


@dataclass(frozen=True)
class SweepOptions:
    file: Path | None = None
    preset: str | None = None
    spec_file: Path | None = None
    frameworks: str | None = None
    seeds: str | None = None
    sets: list[str] = field(default_factory=list)
    grid: list[str] = field(default_factory=list)
    executor: str | None = None
    address: str | None = None
    parallel: int | None = None
    threads: int | None = None
    backend: str | None = None
    gpus_per_point: float | None = None
    data: Path | None = None
    timeout: float | None = None
    retries: int | None = None
    results: Path = Path("results")
    sweep_id: str | None = None
    resume: Path | None = None
    yes: bool = False
    max_points: int = MAX_POINTS
    fetch_all: bool | None = None
    launcher: tuple[str, ...] | None = None  # how a point's process starts (None: the CLI)

    def spec_options(self) -> list[str]:
        given = {
            "SWEEP_FILE": self.file, "--preset": self.preset, "--spec": self.spec_file,
            "--frameworks": self.frameworks, "--seeds": self.seeds, "--set": self.sets,
            "--grid": self.grid, "--sweep-id": self.sweep_id,
        }  # fmt: skip
        return [flag for flag, value in given.items() if value]


def run_sweep(opts: SweepOptions, say: Callable[[str], None] = _say) -> int:
    """Run (or finish) a sweep; its ExitCode: OK every point
    ok, FAILED some failed, INTERRUPTED."""
    started = time.monotonic()
    if opts.resume is not None:
        sweep = SweepDir.open(opts.resume)
        with lock.held(sweep.path, sweep.lock_path, lock.command_line(), say):
            return _resume(sweep, opts, say, started)
    spec = build_sweep(
        opts.file, opts.preset, opts.spec_file, opts.frameworks, opts.seeds, opts.sets, opts.grid
    )
    settings = _settings(opts, None)
    validate(spec, settings.threads)
    points = expand(spec)
    if len(points) > opts.max_points and not opts.yes:
        raise HarnessError(
            f"the sweep has {len(points)} points, more than {opts.max_points}",
            "pass --yes to run them all, or shrink the grid / --seeds",
        )
    _check_data(spec, settings)
    with _executor(settings, opts) as executor:
        settings = replace(
            settings, threads=executor.threads_for(settings.threads, opts.threads is not None)
        )
        validate(spec, settings.threads)  # the threads the executor settled on are valid too
        sweep = SweepDir.create(opts.results, opts.sweep_id)
        with lock.held(sweep.path, sweep.lock_path, lock.command_line(), say):
            sweep.write_spec(spec, settings)
            records = {p.name: _record(p) for p in points}
            sweep.write_index(records)
            say(
                f"sweep {sweep.path}: {len(points)} points ({_what(spec)}) · "
                f"executor {executor.describe()}"
            )
            return _run(sweep, spec, settings, records, executor, opts, say, started)


def _resume(sweep: SweepDir, opts: SweepOptions, say: Callable[[str], None], started: float) -> int:
    changed = opts.spec_options()
    if changed:
        raise HarnessError(
            f"--resume runs the sweep's own spec, so {'/'.join(changed)} cannot change it",
            f"drop {'/'.join(changed)}, or start a new sweep",
        )
    spec, recorded = sweep.read_spec()
    settings = _settings(opts, recorded)
    records = sweep.read_index()
    todo = [r for r in records.values() if r.status != "ok"]
    if len(todo) < len(records):  # finished points: the rest must be timed as they were
        _refuse_unlike(recorded, settings)
    say(f"sweep {sweep.path}: {len(records) - len(todo)} points finished, {len(todo)} to run")
    if todo:
        _check_data(spec, settings)
    with _executor(settings, opts) as executor:
        return _run(sweep, spec, settings, records, executor, opts, say, started)


def _refuse_unlike(recorded: SweepSettings, settings: SweepSettings) -> None:
    """Finished points and the rest must be timed alike: name every setting that differs
    with its old and new value, and how to resume alike."""
    changed = [
        key
        for key in LATENCY_SETTINGS
        if getattr(settings, key) != getattr(recorded, key)
        and not (key == "address" and settings.executor != recorded.executor)
    ]
    if not changed:
        return
    flags = [f"--{key.replace('_', '-')}" for key in changed]
    given = ", ".join(
        f"{flag} {getattr(settings, key)} (the finished points ran with {getattr(recorded, key)})"
        for flag, key in zip(flags, changed, strict=True)
    )
    raise HarnessError(
        f"--resume would run the remaining points with {given}: their latencies would be "
        "pooled with unlike ones",
        f"drop {'/'.join(flags)} to resume as the sweep started, or start a new sweep",
    )


def _settings(opts: SweepOptions, recorded: SweepSettings | None) -> SweepSettings:
    """The options given, else what the sweep recorded, else the defaults."""
    base = recorded or SweepSettings()
    executor = opts.executor or base.executor
    if executor not in EXECUTORS:
        raise HarnessError(f"unknown executor '{executor}'", f"use one of: {', '.join(EXECUTORS)}")
    parallel = opts.parallel or (base.parallel if recorded else 1)
    if executor == "ray" and opts.parallel:
        raise HarnessError(
            "--parallel is for the local executor",
            "Ray runs as many points as the cluster has CPUs for; set --threads per point",
        )
    if opts.address and executor != "ray":
        raise HarnessError(
            "--address is for --executor ray", "add --executor ray, or drop --address"
        )
    if opts.gpus_per_point and executor != "ray":
        raise HarnessError(
            "--gpus-per-point is for --executor ray",
            "with the local executor every point sees this machine's GPUs; drop it",
        )
    from harness.launch import BACKENDS

    backend = opts.backend or base.backend
    if backend not in BACKENDS:  # else every point would fail the same way
        raise HarnessError(f"unknown backend '{backend}'", f"use one of: {', '.join(BACKENDS)}")
    threads = opts.threads or (base.threads if recorded else max(1, usable_cpus() // parallel))
    data = str(opts.data.resolve()) if opts.data else base.data
    if data is None and recorded is None:
        data = _found_data()
    return SweepSettings(
        executor=executor,
        parallel=parallel if executor == "local" else 1,
        threads=threads,
        backend=backend,
        gpus_per_point=opts.gpus_per_point
        if opts.gpus_per_point is not None
        else base.gpus_per_point,
        data=data,
        timeout=opts.timeout if opts.timeout is not None else base.timeout,
        retries=opts.retries if opts.retries is not None else base.retries,
        address=opts.address if opts.address else (base.address if executor == "ray" else None),
        fetch_all=opts.fetch_all if opts.fetch_all is not None else base.fetch_all,
    )


def _found_data() -> str | None:
    """The dataset `harness run` would find ($HARNESS_DATA or ./data), made absolute so
    every point (on any node, from any working directory) reads the same folder; None:
    synthetic images, each point's own."""
    from harness.data.source import locate

    found = locate(None)  # a $HARNESS_DATA holding no dataset is refused here, once
    return None if found is None else str(found[0].resolve())


def _check_data(spec: SweepSpec, settings: SweepSettings) -> None:
    """A dataset given is checked once here (a bad one fails every point the same way);
    for a running Ray cluster only where this machine holds it: each node checks its own."""
    if settings.data is None or (settings.address and not Path(settings.data).exists()):
        return
    from harness.data.source import choose_data
    from harness_contract.spec import build_spec

    spec_file = Path(spec.spec_file) if spec.spec_file else None
    choose_data(Path(settings.data), build_spec(spec.preset, spec_file, spec.sets))


def _executor(settings: SweepSettings, opts: SweepOptions):  # noqa: ANN202
    if settings.executor == "ray":
        from harness.sweep.ray_executor import RayExecutor

        return RayExecutor(settings)
    return _Local(settings)


class _Local:
    """The local executor, bound to a sweep directory once it exists."""

    def __init__(self, settings: SweepSettings) -> None:
        self.settings = settings

    def __enter__(self) -> _Local:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def threads_for(self, threads: int, given: bool) -> int:
        return threads

    def describe(self) -> str:
        return f"local, {self.settings.parallel} at a time, {self.settings.threads} thread(s) each"

    def bind(self, sweep: SweepDir):  # noqa: ANN201
        from harness.sweep.executors import LocalExecutor

        return LocalExecutor(sweep, self.settings.parallel)


def _record(point: Point) -> PointRecord:
    return PointRecord(point.name, point.framework, point.seed, [list(kv) for kv in point.cell])


def _what(spec: SweepSpec) -> str:
    cells = len(spec.cells())
    return f"{len(spec.frameworks)} framework(s) x {cells} cell(s) x {len(spec.seeds)} seed(s)"


def _job(
    point: Point,
    spec: SweepSpec,
    spec_text: SpecText | None,
    settings: SweepSettings,
    attempt: int,
    launcher: tuple[str, ...] | None,
) -> PointJob:
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARD_ENV_PREFIXES)}
    return PointJob(
        point=point, attempt=attempt, preset=spec.preset, spec=spec_text,
        sets=list(spec.sets),
        threads=settings.threads, backend=settings.backend, data=settings.data,
        timeout=settings.timeout, launcher=launcher, env=env, code_digest=code_digest(),
    )  # fmt: skip


class _Hooks:
    """Keeps index.json true after every start and end; decides retries."""

    def __init__(
        self,
        sweep: SweepDir,
        records: dict[str, PointRecord],
        retries: int,
        say: Callable[[str], None],
    ) -> None:
        self.sweep, self.records, self.retries, self.say = sweep, records, retries, say
        # Retries count per run of the command: a resumed point gets its retries again.
        self.first_attempt = {name: r.attempts + 1 for name, r in records.items()}

    def started(self, job: PointJob, node: str) -> None:
        record = self.records[job.name]
        record.status, record.attempts, record.node = "running", job.attempt, node
        self.sweep.write_index(self.records)

    def finished(self, job: PointJob, outcome: PointOutcome) -> PointJob | None:
        record = self.records[job.name]
        record.exit_code, record.wall_s, record.node = (
            outcome.exit_code,
            outcome.wall_s,
            outcome.node,
        )
        record.left_on_node, record.left_files, record.left_bytes = (
            outcome.left_on_node,
            outcome.left_files,
            outcome.left_bytes,
        )
        retry = None
        if outcome.ok:
            record.status, record.reason = "ok", None
            self.say(f"point {job.name}: ok in {outcome.wall_s:.0f} s on {outcome.node}")
        elif outcome.exit_code == ExitCode.INTERRUPTED:
            record.status, record.reason = "interrupted", outcome.reason
        else:
            record.reason = outcome.reason
            record.failures.append(f"attempt {job.attempt} on {outcome.node}: {outcome.reason}")
            if outcome.retryable and job.attempt - self.first_attempt[job.name] < self.retries:
                self.sweep.set_aside(job.name)
                record.status = "pending"
                retry = replace(job, attempt=job.attempt + 1)
                self.say(f"point {job.name}: failed ({outcome.reason}); retrying")
            else:
                record.status = "failed"
                self.say(f"point {job.name}: failed ({outcome.reason})")
        self.sweep.write_index(self.records)
        return retry


def _run(sweep, spec, settings, records, executor, opts, say, started) -> int:  # noqa: ANN001, PLR0913
    todo = [r for r in records.values() if r.status != "ok"]
    jobs = []
    spec_text = SpecText.read(spec.spec_file)  # read once, carried by every point
    launcher = opts.launcher or point_module.DEFAULT_LAUNCHER
    for record in todo:
        sweep.set_aside(record.name)  # a resumed point starts over; its old attempt is kept aside
        record.status = "pending"
        jobs.append(_job(record.point, spec, spec_text, settings, record.attempts + 1, launcher))
    sweep.write_spec(spec, settings)
    sweep.write_index(records)
    hooks = _Hooks(sweep, records, settings.retries, say)
    interrupted = False
    try:
        executor.bind(sweep).run(jobs, hooks)
    except KeyboardInterrupt:
        interrupted = True
        for record in records.values():
            if record.status == "running":
                record.status = "interrupted"
        sweep.write_index(records)
    report = _report(sweep, spec, settings, records, say)
    return _verdict(sweep, records, interrupted, report, say, started)


def _report(sweep, spec, settings, records, say):  # noqa: ANN001, ANN202
    from harness.sweep.aggregate import compute
    from harness.sweep.render import write_report

    result = compute(sweep, records, spec)
    paths = write_report(sweep, spec, settings, records, result)
    typer.echo(
        f"sweep report: {paths.md} (and {paths.html.name}, {paths.csv.name}, "
        f"{paths.json.name}, {len(paths.figures)} figures)"
    )
    for row in result.differences:
        holm = f"; after Holm: {row.holm_verdict}" if row.holm_verdict else ""
        typer.echo(
            f"  {row.comparison:>20} [{row.within}] {row.cell}: {row.mean:+.2f} points "
            f"[{_n(row.low)}, {_n(row.high)}] over {row.n} seeds: {row.verdict}{holm}"
        )
    return paths


def _n(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _verdict(sweep, records, interrupted, report, say, started) -> int:  # noqa: ANN001
    took = f"{time.monotonic() - started:.0f} s"
    ok = [r for r in records.values() if r.status == "ok"]
    if interrupted:
        say(
            f"error: interrupted; {len(ok)} of {len(records)} points finished and kept; "
            f"finish with `harness sweep --resume {sweep.path}`"
        )
        return ExitCode.INTERRUPTED
    failed = [r for r in records.values() if r.status != "ok"]
    if not failed:
        typer.echo(f"sweep complete: {len(ok)} points in {sweep.path} (took {took})")
        return ExitCode.OK
    names = ", ".join(r.name for r in failed[:5]) + (" ..." if len(failed) > 5 else "")
    say(
        f"error: {len(failed)} of {len(records)} points failed ({names}; "
        f"reasons in {sweep.index_path}); "
        f"after fixing the cause, run `harness sweep --resume {sweep.path}` (took {took})"
    )
    return ExitCode.FAILED
