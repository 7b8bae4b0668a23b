"""Every command-line option that means the same in several commands, declared once:
``compare`` and ``run`` take the same study options, ``sweep`` and ``reproduce`` reuse
those that mean the same there."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.options import DEFAULT_RESULTS, StudyOptions
from harness_contract.frameworks import ALL_FRAMEWORKS

Frameworks = Annotated[
    str | None,
    typer.Option("--frameworks", "-f", help=f"comma-separated (default {ALL_FRAMEWORKS})"),
]
Preset = Annotated[
    str | None, typer.Option("--preset", "-p", help="paper, quick, smoke or vit-smoke")
]
SpecFile = Annotated[Path | None, typer.Option("--spec", help="TOML/JSON spec (may set 'base')")]
Sets = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="override, e.g. train.epochs=3")
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data", help="CIFAR-10 python directory; default ./data if present, else synthetic"
    ),
]
Device = Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda")]
Threads = Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads (default all)")]
Backend = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="local (default), docker, or auto (docker when engine+images, else local)",
    ),
]
Gpus = Annotated[
    str | None, typer.Option("--gpus", help="all, none, a count, or ids 0,1 (as docker run --gpus)")
]
Timeout = Annotated[float | None, typer.Option("--timeout", min=1, help="seconds per framework")]
ForceData = Annotated[
    bool, typer.Option("--force-data", help="accept a dataset whose digest differs from the run's")
]

Results = Annotated[Path, typer.Option("--results", help="where run directories go")]
RunId = Annotated[str | None, typer.Option("--run-id", help="name of the new run directory")]
Resume = Annotated[
    Path | None,
    typer.Option("--resume", help="finish a run dir: its spec, data, backend and frameworks"),
]
AllowUntested = Annotated[
    bool,
    typer.Option(
        "--allow-untested-versions",
        help="let a runner use a framework version other than the tested one (a GPU host's "
        "own PyTorch, say); recorded as untested in metrics.json and the report",
    ),
]
ResumeForceData = Annotated[
    bool,
    typer.Option("--force-data", help="with --resume: accept a dataset whose digest changed"),
]


def _option(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


# The study options after the framework(s), in --help order; names are StudyOptions
# fields (set_ -> sets, spec -> spec_file).
STUDY_OPTIONS = [
    _option("preset", Preset),
    _option("spec", SpecFile),
    _option("set_", Sets),
    _option("data", DataDir),
    _option("results", Results, DEFAULT_RESULTS),
    _option("run_id", RunId),
    _option("device", Device),
    _option("threads", Threads),
    _option("backend", Backend),
    _option("timeout", Timeout),
    _option("resume", Resume),
    _option("gpus", Gpus),
    _option("force_data", ResumeForceData, False),
    _option("allow_untested_versions", AllowUntested, False),
]


def study_command(
    command: str, frameworks: inspect.Parameter, doc: str, run: Callable[[StudyOptions], int]
) -> Callable[..., None]:
    """A typer command taking ``frameworks`` then STUDY_OPTIONS, which builds the
    StudyOptions and exits with ``run``'s code. Typer reads the parameters from the
    signature set here, so compare and run cannot drift apart."""

    def command_fn(**given: Any) -> None:
        names = given.pop(frameworks.name)
        spec, sets = given.pop("spec"), given.pop("set_") or []
        options = StudyOptions(
            command=command, frameworks=names, spec_file=spec, sets=sets, **given
        )
        raise typer.Exit(run(options))

    command_fn.__signature__ = inspect.Signature([frameworks, *STUDY_OPTIONS])  # type: ignore[attr-defined]
    command_fn.__name__ = command_fn.__qualname__ = command
    command_fn.__doc__ = doc
    return command_fn


def frameworks_option(default: Any = None) -> inspect.Parameter:
    return _option("frameworks", Frameworks, default)


def framework_argument() -> inspect.Parameter:
    return inspect.Parameter(
        "framework",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[str, typer.Argument(help=" or ".join(ALL_FRAMEWORKS.split(",")))],
    )
