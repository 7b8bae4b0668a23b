"""``harness images``: build, pull, push, list and lock the runner images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

images_app = typer.Typer(
    no_args_is_help=True, help="Build, pull, push, list and lock the runner images."
)
ImageFrameworks = Annotated[
    list[str] | None, typer.Argument(help="pytorch and/or tensorflow (default: both)")
]


def _image_frameworks(names: list[str] | None) -> list[str]:
    from harness_contract.frameworks import FRAMEWORKS, parse_frameworks

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
    cuda: Annotated[
        bool,
        typer.Option(
            "--cuda",
            help="build the CUDA variant (<version>-cuda): FROM the local Debian base with the "
            "framework's hash-locked CUDA wheels (images/<framework>/requirements-cuda.lock)",
        ),
    ] = False,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="with --cuda: write each image's id and CUDA/cuDNN versions into the image "
            "lock ($HARNESS_IMAGE_LOCK or images/lock.toml)",
        ),
    ] = False,
) -> None:
    """Build the runner images (FROM the pinned CUDA bases, or --base; --cuda: CUDA wheels)."""
    from harness_contract.errors import HarnessError

    chosen = _image_frameworks(frameworks)
    if not cuda:
        if record:
            raise HarnessError("--record applies to --cuda builds only", "add --cuda")
        from harness.images.build import build

        for ref in build(chosen, base=base, wheels=wheels, progress=_say):
            typer.echo(f"built {ref}")
        return
    if wheels is not None:
        raise HarnessError(
            "--wheels cannot be used with --cuda: the CUDA images install only the "
            "hash-locked wheels of images/<framework>/requirements-cuda.lock",
            "drop --wheels",
        )
    from harness.images.build import lock_file
    from harness.images.cuda import build_cuda
    from harness.images.cuda_lock import record_cuda

    for built in build_cuda(chosen, base=base, progress=_say):
        typer.echo(f"built {built.ref} ({built.image_id}; {built.facts.summary()})")
        if record:
            fw = built.facts.framework
            record_cuda(lock_file(), fw, built.image_id, built.facts.cuda, built.facts.cudnn)
            typer.echo(f"recorded the {fw} CUDA image {built.image_id} in {lock_file()}")


RegistryOption = Annotated[
    str | None,
    typer.Option(
        metavar="HOST[:PORT]",
        help="registry to use instead of the lock's (also: $HARNESS_REGISTRY)",
    ),
]


@images_app.command("pull")
def images_pull(frameworks: ImageFrameworks = None, registry: RegistryOption = None) -> None:
    """Pull the published images by the digests in the image lock and check them."""
    from harness.images.publish import pull

    for ref in pull(_image_frameworks(frameworks), registry=registry, progress=_say):
        typer.echo(f"pulled {ref}")


@images_app.command("push")
def images_push(
    frameworks: ImageFrameworks = None,
    registry: RegistryOption = None,
    allow_cpu_base: Annotated[
        bool,
        typer.Option(
            "--allow-cpu-base", help="push a build FROM the CPU base to the release registry"
        ),
    ] = False,
) -> None:
    """Push the local images and record their digests in the image lock."""
    from harness.images.publish import push

    chosen = _image_frameworks(frameworks)
    for pushed in push(chosen, registry=registry, allow_cpu_base=allow_cpu_base, progress=_say):
        typer.echo(f"pushed {pushed.reference}")


@images_app.command("list")
def images_list() -> None:
    """The harness images in the local engine, with the versions they hold."""
    from harness.images.build import list_images

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
    from harness.images.base_lock import compare_digests, resolve_digests, write_digests

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
