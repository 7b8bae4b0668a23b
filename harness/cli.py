"""``harness``: the host CLI. It only wires options to the modules that do the work."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from harness_contract.errors import HarnessError

from . import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Compare PyTorch and TensorFlow int8 quantization, reproducibly and fairly.",
)
data_app = typer.Typer(no_args_is_help=True, help="Get, make and check CIFAR-10 directories.")
app.add_typer(data_app, name="data")
images_app = typer.Typer(
    no_args_is_help=True, help="Build, pull, push, list and lock the runner images."
)
app.add_typer(images_app, name="images")
ImageFrameworks = Annotated[
    list[str] | None, typer.Argument(help="pytorch and/or tensorflow (default: both)")
]

Preset = Annotated[str, typer.Option("--preset", "-p", help="paper, quick or smoke")]
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
Results = Annotated[Path, typer.Option("--results", help="where run directories go")]
RunId = Annotated[str | None, typer.Option("--run-id", help="name of the new run directory")]
Device = Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda")]
Threads = Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads (default all)")]
Backend = Annotated[
    str,
    typer.Option(
        "--backend", help="local, docker, or auto (docker when engine+images, else local)"
    ),
]
Gpus = Annotated[
    str | None, typer.Option("--gpus", help="all, none, a count, or ids 0,1 (as docker run --gpus)")
]
Timeout = Annotated[float | None, typer.Option("--timeout", min=1, help="seconds per framework")]
Resume = Annotated[Path | None, typer.Option("--resume", help="finish an unfinished run dir")]


def _overrides(sets: list[str] | None, device: str | None, threads: int | None) -> list[str]:
    out = list(sets or [])
    if device is not None:
        out.append(f"device={device}")
    if threads is not None:
        out.append(f"measure.threads={threads}")
    return out


def _study(
    command: str,
    frameworks: str,
    preset: str,
    spec_file: Path | None,
    sets: list[str] | None,
    data: Path | None,
    results: Path,
    run_id: str | None,
    device: str | None,
    threads: int | None,
    backend_name: str,
    timeout: float | None,
    resume: Path | None,
    gpus_text: str | None,
) -> None:
    from .backends import get_backend
    from .dataset_source import choose_data
    from .frameworks import parse_frameworks
    from .gpus import NO_GPUS, parse_gpus
    from .orchestrate import run_frameworks
    from .progress import RunDisplay
    from .runs import create_run, open_run
    from .summary import print_summary

    chosen = parse_frameworks(frameworks)
    gpus = parse_gpus(gpus_text) if gpus_text else NO_GPUS
    if gpus_text and device is None and resume is None:
        device = gpus.spec_device()  # asking for GPUs means training on them
    backend = get_backend(backend_name, gpus, say=lambda line: typer.echo(line, err=True))
    if resume is not None:
        if spec_file or sets or device or threads:
            raise HarnessError(
                "--resume reuses the run's own spec.json",
                "drop --spec/--set/--device/--threads when resuming",
            )
        run = open_run(resume)
        spec = run.spec
    else:
        from harness_contract.spec import build_spec

        spec = build_spec(preset, spec_file, _overrides(sets, device, threads))
        run = None
    choice = choose_data(data, spec)
    if run is None:
        run = create_run(results, spec, run_id)
    with RunDisplay() as display:
        display.say(
            f"run [bold]{run.path}[/] · preset {spec.name} · spec {spec.digest()} · "
            f"backend {backend.name} · data {choice.path} ({choice.origin})"
        )
        launched = run_frameworks(run, chosen, backend, choice.path, display, timeout)
    # A runner that stopped before writing metrics (bad data, say) leaves nothing to
    # render; then its own one-line message is the error, not "no results".
    if any(run.path.glob("*/metrics.json")):
        _render(run.path)
        print_summary(run.path)
    failed = [r for r in launched if r.outcome != "complete"]
    if any(r.outcome == "interrupted" for r in launched):
        _fail(
            f"interrupted; completed results are kept in {run.path}; "
            f"finish with: harness {command} --resume {run.path}",
            130,
        )
    if failed:
        only_bad_input = all(r.outcome == "user_error" for r in failed)
        _fail("; ".join(f"{r.framework}: {r.message}" for r in failed), 2 if only_bad_input else 1)


def _render(run_dir: Path) -> None:
    from .report import write_report

    paths = write_report(run_dir)
    typer.echo(f"report: {paths.md} (and {paths.html.name}, {len(paths.figures)} figures)")
    typer.echo(f"results: {paths.csv}")


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def compare(
    frameworks: Annotated[
        str, typer.Option("--frameworks", "-f", help="comma-separated")
    ] = "pytorch,tensorflow",
    preset: Preset = "smoke",
    spec: SpecFile = None,
    set_: Sets = None,
    data: DataDir = None,
    results: Results = Path("results"),
    run_id: RunId = None,
    device: Device = None,
    threads: Threads = None,
    backend: Backend = "local",
    timeout: Timeout = None,
    resume: Resume = None,
    gpus: Gpus = None,
) -> None:
    """Run every framework on one spec, then write the merged report."""
    _study(
        f"compare --frameworks {frameworks}",
        frameworks,
        preset,
        spec,
        set_,
        data,
        results,
        run_id,
        device,
        threads,
        backend,
        timeout,
        resume,
        gpus,
    )


@app.command()
def run(
    framework: Annotated[str, typer.Argument(help="pytorch or tensorflow")],
    preset: Preset = "smoke",
    spec: SpecFile = None,
    set_: Sets = None,
    data: DataDir = None,
    results: Results = Path("results"),
    run_id: RunId = None,
    device: Device = None,
    threads: Threads = None,
    backend: Backend = "local",
    timeout: Timeout = None,
    resume: Resume = None,
    gpus: Gpus = None,
) -> None:
    """Run one framework alone (same layout and report as compare)."""
    _study(
        f"run {framework}",
        framework,
        preset,
        spec,
        set_,
        data,
        results,
        run_id,
        device,
        threads,
        backend,
        timeout,
        resume,
        gpus,
    )


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a results/<run-id> directory")]) -> None:
    """Re-render report.md and results.csv from a run's metrics.json files."""
    from .summary import print_summary

    _render(run_dir)
    print_summary(run_dir)


@app.command()
def traces(
    run_dir: Annotated[Path, typer.Argument(help="a results/<run-id> directory")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machine reading")] = False,
) -> None:
    """List every profiler trace of a run, with the command that opens it (or why there is none)."""
    from .traces import list_traces, render_json, render_text

    listing = list_traces(run_dir)
    typer.echo(render_json(listing) if as_json else render_text(listing), nl=False)


@app.command("spec")
def show_spec(preset: Preset = "smoke", spec: SpecFile = None, set_: Sets = None) -> None:
    """Print the resolved spec (preset + file + overrides) as JSON."""
    from harness_contract.spec import build_spec

    typer.echo(build_spec(preset, spec, _overrides(set_, None, None)).to_json(), nl=False)


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
    from .datasets import fetch

    typer.echo(f"CIFAR-10 ready in {fetch(dest, archive=archive)}")


@data_app.command("synth")
def data_synth(
    dest: Annotated[Path, typer.Argument(help="directory to write into")],
    train_per_batch: Annotated[int, typer.Option(min=1)] = 1000,
    test: Annotated[int, typer.Option(min=1)] = 1000,
    seed: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Write a synthetic, learnable dataset in the CIFAR-10 python format."""
    from harness_contract.cifar import write_synthetic

    root = write_synthetic(dest, train_per_batch=train_per_batch, test_count=test, seed=seed)
    typer.echo(f"synthetic CIFAR-10 ({train_per_batch * 5} train / {test} test) in {root}")


@data_app.command("verify")
def data_verify(path: Annotated[Path, typer.Argument(help="CIFAR-10 directory")]) -> None:
    """Check every batch file, the label range and counts, and SHA256SUMS when present."""
    from harness_contract.cifar import verify

    r = verify(path)
    typer.echo(
        f"{r.root}: {r.kind}, {r.train_images} train / {r.test_images} test images, "
        f"checksums {r.checksums}\n  train per class {list(r.train_class_counts)}\n"
        f"  test per class  {list(r.test_class_counts)}"
    )


def _image_frameworks(names: list[str] | None) -> list[str]:
    from .frameworks import FRAMEWORKS, parse_frameworks

    return [fw.name for fw in parse_frameworks(",".join(names or FRAMEWORKS))]


def _say(line: str) -> None:
    typer.echo(line.rstrip("\n"), err=True)


@images_app.command("build")
def images_build(
    frameworks: ImageFrameworks = None,
    base: Annotated[
        str | None,
        typer.Option(
            help="base image instead of the pinned CUDA one, e.g. quant-harness/cpu-base:bookworm"
        ),
    ] = None,
    wheels: Annotated[Path | None, typer.Option(help="folder of wheels to install from")] = None,
) -> None:
    """Build the runner images (FROM the pinned CUDA bases, or --base)."""
    from .images import build

    for ref in build(_image_frameworks(frameworks), base=base, wheels=wheels, progress=_say):
        typer.echo(f"built {ref}")


@images_app.command("pull")
def images_pull(frameworks: ImageFrameworks = None) -> None:
    """Pull the published images by the digests in images/lock.toml."""
    from .images import pull

    for ref in pull(_image_frameworks(frameworks), progress=_say):
        typer.echo(f"pulled {ref}")


@images_app.command("push")
def images_push(
    frameworks: ImageFrameworks = None,
    registry: Annotated[str | None, typer.Option(help="e.g. ghcr.io")] = None,
) -> None:
    """Push the local images to a registry (as the publishing workflow does)."""
    from .images import push

    for ref in push(_image_frameworks(frameworks), registry=registry, progress=_say):
        typer.echo(f"pushed {ref}")


@images_app.command("list")
def images_list() -> None:
    """The harness images in the local engine, with the versions they hold."""
    from .images import list_images

    rows = list_images()
    if not rows:
        typer.echo("no harness images here; build them with: harness images build")
    for r in rows:
        typer.echo(
            f"{r.framework:11} {r.ref:32} {r.id:14} {r.size_mib:8.0f} MiB  "
            f"{r.created}  {r.framework_versions}"
        )


@images_app.command("lock")
def images_lock(
    framework: Annotated[
        list[str] | None,
        typer.Option(
            "--framework", "-f", metavar="NAME", help="pytorch or tensorflow (default: both)"
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="compare with the registry only; exit 1 on a mismatch")
    ] = False,
) -> None:
    """Resolve the CUDA base tags to digests and record them in images/lock.toml."""
    from .image_lock import compare_digests, resolve_digests, write_digests

    resolved = resolve_digests(_image_frameworks(framework))  # every lookup before any write
    if check:
        problems = compare_digests(resolved)
        for line in problems:
            typer.echo(line)
        if problems:
            raise typer.Exit(1)
        for name, digest in resolved.items():
            typer.echo(f"{name}: images/lock.toml matches the registry ({digest})")
        return
    for change in write_digests(resolved):
        typer.echo(change.describe())


@app.command()
def doctor() -> None:
    """Check this machine: Python, runners, Docker engine, GPU runtime, images, dataset."""
    from .doctor import checks

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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Every error a user can cause ends as one line and a non-zero exit, never a traceback."""
    # Ctrl-C and `kill` both stop a run cleanly: the runner gets time to save its
    # finished phases. (A shell starts background jobs with SIGINT ignored; undo that.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        # Without standalone mode, click hands back typer.Exit's code as the return value.
        result = app(args=argv, prog_name="harness", standalone_mode=False)
    except HarnessError as exc:
        typer.echo(f"error: {exc.one_line()}", err=True)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except _UsageError as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f"see `{ctx.command_path} --help`" if ctx else "see `harness --help`"
        typer.echo(f"error: {exc.format_message()}; {hint}", err=True)
        return 2
    except _ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("error: interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
