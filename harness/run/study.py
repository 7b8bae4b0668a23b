"""A study from options to the last line: plan (new run or resume), own the run
directory, run the frameworks, render the report, and say truthfully how it ended.

The CLI only builds ``StudyOptions`` and calls ``run_study``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import typer

from harness.cli.options import (
    DEFAULT_BACKEND,
    DEFAULT_PRESET,
    RESULTS_FIX,
    StudyOptions,
    resume_command,
)
from harness.data.source import DataChoice
from harness.run import owner_lock as lock
from harness.run.record import StudyRecord
from harness.run.rundir import RunDir
from harness_contract.errors import HarnessError
from harness_contract.exit_codes import ExitCode
from harness_contract.frameworks import ALL_FRAMEWORKS, Framework, parse_frameworks
from harness_contract.fs.oserrors import os_error
from harness_contract.spec import ExperimentSpec

if TYPE_CHECKING:
    from harness.launch import Backend


def _say(line: str) -> None:
    typer.echo(line, err=True)


@dataclass(frozen=True)
class Plan:
    """Everything a study needs, settled before a runner starts."""

    frameworks: list[Framework]
    backend: str
    gpus: str | None
    timeout: float | None
    allow_untested: bool  # --allow-untested-versions, passed on to every runner


def run_study(opts: StudyOptions, say: Callable[[str], None] = _say) -> int:
    """Run the study ``opts`` asks for; its ExitCode."""
    started = time.monotonic()  # a newcomer's first question: how long did that take?
    opts.check()
    if opts.resume is not None:
        run = RunDir.open(opts.resume)
        with lock.held(run.path, run.lock_path, lock.command_line(), say):
            record = StudyRecord.read(run.record_path)
            plan = _resume_plan(opts, record)
            backend = _backend(plan, say)
            choice = _resume_data(opts, run, record, say)
            _record(run, opts, plan, choice, record)
            return _run(run, opts, plan, backend, choice, say, started)
    plan = _new_plan(opts)
    spec = _new_spec(opts, plan)
    backend = _backend(plan, say)
    from harness.data.source import choose_data

    choice = choose_data(opts.data, spec)  # data errors come before a run directory exists
    run = RunDir.reserve(opts.results, spec, opts.run_id)
    try:
        with lock.held(run.path, run.lock_path, lock.command_line(), say):
            run.write_spec(spec)
            _record(run, opts, plan, choice, None)
            return _run(run, opts, plan, backend, choice, say, started)
    finally:
        if not run.spec_path.exists():  # it never started: leave no empty run directory
            with contextlib.suppress(OSError):
                run.path.rmdir()


# ---------------------------------------------------------------- planning


def _new_plan(opts: StudyOptions) -> Plan:
    return Plan(
        frameworks=parse_frameworks(opts.frameworks or ALL_FRAMEWORKS),
        backend=opts.backend or DEFAULT_BACKEND,
        gpus=opts.gpus,
        timeout=opts.timeout,
        allow_untested=opts.allow_untested_versions,
    )


def _new_spec(opts: StudyOptions, plan: Plan) -> ExperimentSpec:
    from harness.launch.gpus import parse_gpus
    from harness_contract.spec import build_spec

    device = opts.device
    if plan.gpus and device is None:
        device = parse_gpus(plan.gpus).spec_device()  # asking for GPUs means training on them
    overrides = replace(opts, device=device).overrides()
    return build_spec(opts.preset or DEFAULT_PRESET, opts.spec_file, overrides)


def _resume_plan(opts: StudyOptions, record: StudyRecord | None) -> Plan:
    """The recorded choices, unless the user repeats them; a different one is refused."""
    if record is None:  # a run from before run.json: the options as given
        return _new_plan(opts)
    for flag, given, recorded in (
        ("--backend", opts.backend, record.backend),
        ("--gpus", opts.gpus, record.gpus),
    ):
        if given is not None and given != recorded:
            raise HarnessError(
                f"--resume finishes the run as it started ({flag} {recorded}), not {flag} {given}",
                f"drop {flag}, or start a new run without --resume",
            )
    return Plan(
        frameworks=parse_frameworks(opts.frameworks or ",".join(record.frameworks)),
        backend=record.backend,
        gpus=record.gpus,
        timeout=opts.timeout if opts.timeout is not None else record.timeout_s,
        # Once allowed, kept: the printed resume command does not repeat the flag.
        allow_untested=opts.allow_untested_versions or record.allow_untested_versions,
    )


def _backend(plan: Plan, say: Callable[[str], None]) -> Backend:
    from harness.launch import get_backend
    from harness.launch.gpus import NO_GPUS, parse_gpus

    gpus = parse_gpus(plan.gpus) if plan.gpus else NO_GPUS
    return get_backend(plan.backend, gpus, say=say)


def _resume_data(
    opts: StudyOptions, run: RunDir, record: StudyRecord | None, say: Callable[[str], None]
) -> DataChoice:
    from harness.run.resume_data import recorded_dataset, resume_choice, same_data

    recorded = recorded_dataset(run, record)
    choice = resume_choice(opts.data, run.spec, recorded)
    if recorded is not None:
        same_data(run, recorded, choice, opts.force_data, say)
    return choice


def _record(
    run: RunDir, opts: StudyOptions, plan: Plan, choice: DataChoice, earlier: StudyRecord | None
) -> None:
    """Write run.json: the study's choices, with the data it now runs on (a resume keeps
    the command and frameworks the run started with, and adds any it was asked for)."""
    from harness.run.resume_data import digest_of

    asked = [fw.name for fw in plan.frameworks]
    record = StudyRecord(
        command=earlier.command if earlier else opts.command,
        frameworks=list(dict.fromkeys([*(earlier.frameworks if earlier else []), *asked])),
        data_path=str(choice.path.resolve()),
        data_digest=digest_of(choice),
        data_origin=choice.origin,
        backend=plan.backend,
        gpus=plan.gpus,
        timeout_s=plan.timeout,
        allow_untested_versions=plan.allow_untested,
    )
    try:
        record.write(run.record_path)
    except OSError as exc:
        raise os_error(exc, run.record_path, RESULTS_FIX) from None


# ---------------------------------------------------------------- running


def _run(
    run: RunDir,
    opts: StudyOptions,
    plan: Plan,
    backend: Backend,
    choice: DataChoice,
    say: Callable[[str], None],
    started: float,
) -> int:
    from harness.run.orchestrate import run_frameworks
    from harness.run.progress import RunDisplay
    from harness.run.verdict import final_line, judge

    spec = run.spec
    with RunDisplay() as display:
        display.say(
            f"run [bold]{run.path}[/] · preset {spec.name} · spec {spec.digest()} · "
            f"backend {backend.name} · data {choice.path} ({choice.origin})"
        )
        launched = run_frameworks(
            run,
            plan.frameworks,
            backend,
            choice.path,
            display,
            plan.timeout,
            allow_untested_versions=plan.allow_untested,
        )
    # A runner that stopped before writing metrics (bad data, say) leaves nothing to
    # render; then its own one-line message is the error, not "no results".
    if run.metrics_paths():
        try:
            render(run)  # unreadable metrics files are named by the verdict below
        except HarnessError as exc:
            say(f"note: no report written ({exc.one_line()})")
    names = [fw.name for fw in plan.frameworks]
    verdict = judge(run, names, launched)
    took = f"{time.monotonic() - started:.0f} s"
    if verdict.ok:
        typer.echo(f"study complete: {', '.join(names)} in {run.path} (took {took})")
        return ExitCode.OK
    if not verdict.interrupted:  # Ctrl-C ends in its one line alone
        say(f"study took {took}")
    say(f"error: {final_line(verdict, resume_command(opts.command, names, run.path))}")
    return verdict.exit_code


def run_verdict(run: RunDir) -> str | None:
    """How a finished run's study ended, as ``compare`` said it: None when every
    framework is complete with every phase ok, else the final line (for ``harness report``)."""
    from harness.run.verdict import final_line, judge

    names = list(dict.fromkeys([*run.asked_frameworks(), *run.framework_names()]))
    verdict = judge(run, names, [])
    if verdict.ok:
        return None
    try:
        record = StudyRecord.read(run.record_path)
    except HarnessError:  # an unreadable run.json: the hint is spelled as compare's
        record = None
    command = record.command if record else "compare"
    return final_line(verdict, resume_command(command, names, run.path))


def render(run: RunDir) -> list[str]:
    """Write the report and print where it is; the report's problems (unreadable
    metrics files) are returned for the caller to show."""
    from harness.report import write_report
    from harness.run.summary import print_summary

    try:
        paths = write_report(run.path)
    except OSError as exc:
        raise os_error(exc, run.path, RESULTS_FIX) from None
    typer.echo(f"report: {paths.md} (and {paths.html.name}, {len(paths.figures)} figures)")
    typer.echo(f"results: {paths.csv}")
    print_summary(run.path)
    return list(paths.problems)
