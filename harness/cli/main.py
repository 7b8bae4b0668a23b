"""``harness``: the host CLI. It only wires options to the modules that do the work."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from harness import __version__
from harness.cli.flags import (
    ForceData,
    Preset,
    Sets,
    SpecFile,
    framework_argument,
    frameworks_option,
    study_command,
)
from harness.cli.images import images_app
from harness.cli.options import DEFAULT_PRESET, RESULTS_FIX, StudyOptions
from harness.cli.sweep import sweep
from harness.run import interrupts
from harness_contract.errors import HarnessError
from harness_contract.exit_codes import ExitCode
from harness_contract.fs.oserrors import os_error

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Compare PyTorch and TensorFlow int8 quantization, reproducibly and fairly.",
)
data_app = typer.Typer(no_args_is_help=True, help="Get, make and check CIFAR-10 directories.")
app.add_typer(data_app, name="data")
app.add_typer(images_app, name="images")
app.command("sweep")(sweep)


def _run_study(options: StudyOptions) -> int:
    from harness.run.study import run_study

    return run_study(options)


app.command("compare")(
    study_command(
        "compare",
        frameworks_option(),
        "Run every framework on one spec, then write the merged report.",
        _run_study,
    )
)
app.command("run")(
    study_command(
        "run",
        framework_argument(),
        "Run one framework alone (same layout and report as compare).",
        _run_study,
    )
)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a results/<run-id> directory")]) -> None:
    """Re-render report.md and results.csv from a run's metrics.json files (exit 0 when
    every framework is complete with every phase ok, 1 otherwise, as the study's own)."""
    from harness.run import owner_lock as lock
    from harness.run.rundir import RunDir
    from harness.run.study import render, run_verdict

    if not run_dir.is_dir():
        what = "is a file, not a run directory" if run_dir.exists() else "does not exist"
        raise HarnessError(f"{run_dir} {what}", "pass a results/<run-id> directory")
    run = RunDir(run_dir)
    with lock.held(run.path, run.lock_path, lock.command_line(), _note):
        problems = render(run)
    line = run_verdict(run)  # a failed framework or phase, or an unreadable metrics.json
    if line is None and problems:
        line = "; ".join(problems)
    if line is not None:
        typer.echo(f"error: {line}", err=True)
        raise typer.Exit(1)


@app.command()
def reproduce(
    run_dir: Annotated[Path, typer.Argument(help="a finished results/<run-id> directory")],
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="local or docker (default: where the run ran)"),
    ] = None,
    pull: Annotated[
        bool, typer.Option("--pull", help="with docker: pull the published images first")
    ] = False,
    data: Annotated[
        Path | None, typer.Option("--data", help="the run's dataset, if it moved")
    ] = None,
    force_data: ForceData = False,
) -> None:
    """Rerun a finished run beside it and check every model file bit for bit (0: reproduced)."""
    from harness.reproduce.command import reproduce as run_reproduction
    from harness.reproduce.plan import ReproduceOptions

    options = ReproduceOptions(run_dir, backend, pull, data, force_data)
    raise typer.Exit(run_reproduction(options))


@app.command()
def traces(
    run_dir: Annotated[Path, typer.Argument(help="a results/<run-id> directory")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machine reading")] = False,
) -> None:
    """List every profiler trace of a run, with the command that opens it (or why there is none)."""
    from harness.results.traces import list_traces, render_json, render_text

    listing = list_traces(run_dir)
    typer.echo(render_json(listing) if as_json else render_text(listing), nl=False)


@app.command("spec")
def show_spec(preset: Preset = "smoke", spec: SpecFile = None, set_: Sets = None) -> None:
    """Print the resolved spec (preset + file + overrides) as JSON."""
    from harness_contract.spec import build_spec

    typer.echo(build_spec(preset or DEFAULT_PRESET, spec, set_ or []).to_json(), nl=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of metrics.json."""
    import json

    from harness_contract.metrics import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@data_app.command("fetch")
def data_fetch(
    dest: Annotated[Path, typer.Argument(help="directory to unpack into")],
    archive: Annotated[Path | None, typer.Option(help="use a local cifar-10-python.tar.gz")] = None,
) -> None:
    """Download the official CIFAR-10 archive, check its MD5, unpack it."""
    from harness.data.fetch import fetch

    typer.echo(f"CIFAR-10 ready in {fetch(dest, archive=archive)}")


@data_app.command("synth")
def data_synth(
    dest: Annotated[Path, typer.Argument(help="directory to write into")],
    train_per_batch: Annotated[int, typer.Option(min=1)] = 1000,
    test: Annotated[int, typer.Option(min=1)] = 1000,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="replace a synthetic dataset the harness wrote there (never real data)"
        ),
    ] = False,
) -> None:
    """Write a synthetic, learnable dataset in the CIFAR-10 python format."""
    from harness_contract.data.cifar import write_synthetic

    root = write_synthetic(
        dest, train_per_batch=train_per_batch, test_count=test, seed=seed, replace=force
    )
    typer.echo(f"synthetic CIFAR-10 ({train_per_batch * 5} train / {test} test) in {root}")


@data_app.command("verify")
def data_verify(path: Annotated[Path, typer.Argument(help="CIFAR-10 directory")]) -> None:
    """Check every batch file, the label range and counts, and SHA256SUMS when present."""
    from harness_contract.data.cifar import verify

    r = verify(path)
    typer.echo(
        f"{r.root}: {r.kind}, {r.train_images} train / {r.test_images} test images, "
        f"checksums {r.checksums}\n  train per class {list(r.train_class_counts)}\n"
        f"  test per class  {list(r.test_class_counts)}"
    )


@app.command()
def doctor() -> None:
    """Check this machine: Python, runners, Docker engine, GPU runtime, images, dataset."""
    from harness.doctor import checks

    failed = False
    for check in checks():
        mark = {True: "ok  ", False: "FAIL", None: "warn" if check.fix else "n/a "}[check.ok]
        fix = f"  -> {check.fix}" if check.ok is not True and check.fix else ""
        typer.echo(f"{mark} {check.name}: {check.detail}{fix}")
        failed |= check.ok is False
    if failed:
        raise typer.Exit(1)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version")] = False,
) -> None:
    if version:
        typer.echo(f"harness {__version__}")
        raise typer.Exit(0)


def _base_class(cls: type, name: str) -> type:
    # typer >= 0.20 vendors click (typer._click); older releases use click itself.
    # Both keep click's exception hierarchy, so find the base by name.
    return next(c for c in cls.__mro__ if c.__name__ == name)


_UsageError = _base_class(typer.BadParameter, "UsageError")
_ClickException = _base_class(typer.BadParameter, "ClickException")


def _note(line: str) -> None:
    typer.echo(line, err=True)


def main(argv: list[str] | None = None) -> int:
    """Every error a user can cause ends as one line and a non-zero exit, never a traceback."""
    # Ctrl-C and `kill` both stop a run cleanly: the runner gets time to save its
    # finished phases; a second one while that happens only makes it quicker.
    interrupts.install()
    try:
        result = _invoke(sys.argv[1:] if argv is None else list(argv))
    except HarnessError as exc:
        return _error(exc.one_line(), ExitCode.USER_ERROR)
    except typer.Exit as exc:
        return exc.exit_code
    except _UsageError as exc:
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx else "harness"
        if not exc.format_message():  # a bare group: its help is printed already
            return _error(
                f"`{where}` needs a command; pick one from the list above", ExitCode.USER_ERROR
            )
        return _error(
            f"{exc.format_message().rstrip('.')}; see `{where} --help`", ExitCode.USER_ERROR
        )
    except _ClickException as exc:
        return _error(exc.format_message(), exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        return _error("interrupted", ExitCode.INTERRUPTED)
    except BrokenPipeError:  # whoever read stdout went away (`| head`): nothing to tell
        _silence_stdout()
        return 128 + signal.SIGPIPE  # the shell's status for it: never success
    except OSError as exc:  # the net under every file the harness writes or reads
        return _error(os_error(exc, fix=RESULTS_FIX).one_line(), ExitCode.USER_ERROR)
    return result if isinstance(result, int) else 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's own flush at exit meets no closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _invoke(args: list[str]) -> object:
    """Run the command without typer's own top level, which would turn a Ctrl-C into a
    silent ExitCode.INTERRUPTED: every ending is handled (and said in one line) by ``main``."""
    command = typer.main.get_command(app)
    with command.make_context("harness", args) as ctx:
        return command.invoke(ctx)


def _error(line: str, code: int) -> int:
    typer.echo(f"error: {line}", err=True)
    return code
