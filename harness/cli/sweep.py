"""``harness sweep``: options only; harness.sweep.driver does the work (imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.flags import Backend, DataDir, Frameworks


def sweep(
    sweep_file: Annotated[
        Path | None, typer.Argument(help="sweep spec TOML (see docs/sweep.md); optional")
    ] = None,
    preset: Annotated[str | None, typer.Option("--preset", "-p", help="base preset")] = None,
    spec: Annotated[Path | None, typer.Option("--spec", help="base spec file")] = None,
    frameworks: Frameworks = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="a count (5: seeds 0-4) or a list 0,3,7")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="override on every point")
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", "-g", help="KEY=V1,V2: one cell per value (repeat for more keys)"),
    ] = None,
    executor: Annotated[
        str | None, typer.Option("--executor", help="local (default) or ray")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="ray: a running cluster (auto or HOST:PORT); default: "
            "start one here for the sweep",
        ),
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel", min=1, help="local: points at once, the cores split between them"
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="threads per point (recorded in its spec)"),
    ] = None,
    backend: Backend = None,
    gpus_per_point: Annotated[
        float | None, typer.Option("--gpus-per-point", min=0, help="ray: GPUs each point asks for")
    ] = None,
    data: DataDir = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=1, help="seconds per point's framework")
    ] = None,
    retries: Annotated[
        int | None, typer.Option("--retries", min=0, help="retries of a failed point (default 1)")
    ] = None,
    results: Annotated[Path, typer.Option("--results", help="where sweep directories go")] = Path(
        "results"
    ),
    sweep_id: Annotated[
        str | None, typer.Option("--sweep-id", help="name of the new sweep directory")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="finish a sweep directory's unfinished points")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="run a sweep of more than 50 points")] = False,
    fetch_all: Annotated[
        bool | None,
        typer.Option("--fetch-all/--leave-large", help="ray: also ship model files and traces"),
    ] = None,
) -> None:
    """Run many points (framework x grid cell x seed) and report means, intervals and
    paired differences over seeds."""
    from harness.sweep.driver import SweepOptions, run_sweep

    if resume is not None:
        _check_resume(resume)
    options = SweepOptions(
        file=sweep_file, preset=preset, spec_file=spec, frameworks=frameworks, seeds=seeds,
        sets=set_ or [], grid=grid or [], executor=executor, address=address, parallel=parallel,
        threads=threads, backend=backend, gpus_per_point=gpus_per_point, data=data,
        timeout=timeout, retries=retries, results=results, sweep_id=sweep_id, resume=resume,
        yes=yes, fetch_all=fetch_all,
    )  # fmt: skip
    raise typer.Exit(run_sweep(options))


def _check_resume(path: Path) -> None:
    """Say what is wrong with a --resume path that is no folder at all (a folder that is
    not a sweep's is named by the sweep itself)."""
    from harness_contract.errors import HarnessError

    if not path.exists():
        raise HarnessError(
            f"sweep directory {path} does not exist", "pass a results/<sweep-id> directory"
        )
    if not path.is_dir():
        raise HarnessError(
            f"{path} is a file, not a sweep directory", "pass the results/<sweep-id> directory"
        )
