"""``harness reproduce``: refuse bad input, verify the original, rerun it beside itself,
compare, and say the verdict. Exit (ExitCode) OK reproduced (every artifact
bit-identical), FAILED not reproduced, USER_ERROR bad input, INTERRUPTED. The original is
only ever read."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import typer

from harness.cli.options import RESULTS_FIX
from harness.reproduce.image_check import image_notes, pull_locked
from harness.reproduce.original import Original, open_original
from harness.reproduce.plan import (
    ReproduceOptions,
    check_backend,
    choose_rerun_data,
    new_run_id,
    recorded_backend,
    study_options,
)
from harness.reproduce.verify import FileCheck, verify_original
from harness.run import owner_lock as lock
from harness.run.rundir import RunDir
from harness_contract.errors import HarnessError
from harness_contract.exit_codes import ExitCode
from harness_contract.fs.oserrors import os_error


def _say(line: str) -> None:
    typer.echo(line, err=True)


def reproduce(opts: ReproduceOptions, say: Callable[[str], None] = _say) -> int:
    original = open_original(opts.run_dir)
    backend = check_backend(opts.backend or recorded_backend(original))
    if opts.pull and backend != "docker":
        raise HarnessError("--pull only applies with --backend docker", "drop --pull")
    checks = _verify(original, say)  # before anything reruns: a damaged original stops here
    if any(c.status != "ok" for c in checks):
        return ExitCode.FAILED
    choice = choose_rerun_data(original, opts.data, opts.force_data, say)
    study = study_options(original, backend, choice, new_run_id(original), say)
    if backend == "docker":
        if opts.pull:
            pull_locked(original, say)
        for note in image_notes(original):
            say(f"note: {note}; the bits may differ")
    rerun = RunDir(study.results / str(study.run_id))
    say(f"reproducing {original.run.path} into {rerun.path} (backend {backend})")
    from harness.run.study import run_study

    try:
        code = run_study(study, say)
        if code == ExitCode.INTERRUPTED or not rerun.spec_path.is_file():
            _mark_interrupted(rerun, original, code)
            return code
        return _conclude(original, rerun, checks, code)
    except KeyboardInterrupt:
        _mark_interrupted(rerun, original, ExitCode.INTERRUPTED)
        raise


def _verify(original: Original, say: Callable[[str], None]) -> list[FileCheck]:
    """The original's model files against its recorded digests, before any rerun (a rerun
    of a damaged original would take minutes to say what this says at once): a file
    changed or gone, or an edited digest, is the one error line."""
    checks = verify_original(original)
    bad = [c for c in checks if c.status != "ok"]
    if bad:
        found = "; ".join(c.describe() for c in bad)
        say(
            f"error: original {original.run.run_id} cannot be reproduced as recorded: {found}; "
            "restore its files (or its metrics.json) from a backup, then reproduce it again"
        )
        return checks
    say(f"original {original.run.run_id}: all {len(checks)} artifacts match their recorded digests")
    return checks


def _conclude(original: Original, rerun: RunDir, checks: list[FileCheck], study_code: int) -> int:
    from harness.reproduce.compare import compare_runs
    from harness.reproduce.render import print_table, verdict_line, write_files

    rep = compare_runs(original, rerun, checks)
    # A rerun the runner refused as bad input stays a user error; else the verdict decides.
    code = (
        ExitCode.USER_ERROR
        if study_code == ExitCode.USER_ERROR
        else ExitCode.OK
        if rep.reproduced
        else ExitCode.FAILED
    )
    print_table(rep)
    try:
        with lock.held(rerun.path, rerun.lock_path, lock.command_line()):
            md, _ = write_files(rep, code)
    except OSError as exc:
        raise os_error(exc, rerun.path, RESULTS_FIX) from None
    typer.echo(f"reproduction: {md} (and .html, .json)")
    line = verdict_line(rep)
    if code == ExitCode.OK:
        typer.echo(line)
    else:
        typer.echo(f"error: {line}", err=True)
    return code


def _mark_interrupted(rerun: RunDir, original: Original, code: int) -> None:
    """An interrupted reproduction says so in its own directory (never in the original)."""
    if code != ExitCode.INTERRUPTED or not rerun.path.is_dir():
        return
    from harness.reproduce.render import write_interrupted

    with contextlib.suppress(OSError):
        write_interrupted(rerun.path, original.run.path)
