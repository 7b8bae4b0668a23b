"""Build and list the harness's runner images (host side; pushing and pulling: publish.py).

What the images are built from lives in ``images/lock.toml``; the Dockerfiles beside
it hold the same defaults (a test checks they agree). The Docker SDK is imported only
when an engine is needed, so the host CLI starts fast where Docker is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_contract import __version__
from harness_contract.errors import HarnessError
from harness_contract.frameworks import FRAMEWORKS as REGISTERED

FRAMEWORKS = tuple(REGISTERED)
RUNNER_PACKAGES = {name: entry.runner_module for name, entry in REGISTERED.items()}
LOCAL_REPOSITORY = "quant-harness"
VERSIONS_LABEL = "io.quant-harness.framework-versions"
REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_RELATIVE = Path("images") / "lock.toml"
# A copy of the lock elsewhere (CI, a lab mirror): read and written instead of the tracked file.
LOCK_ENV = "HARNESS_IMAGE_LOCK"
# Which image variant runs read by default: "" (the images of `harness images build`) or
# "cuda" (those of `harness images build --cuda`, tagged <version>-cuda).
VARIANT_ENV = "HARNESS_IMAGE_VARIANT"
VARIANTS = ("", "cuda")
DOCKER_FIX = "start the Docker engine (or set DOCKER_HOST), or use the local backend"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class FrameworkLock:
    """One framework's row of the lock file."""

    framework: str
    base_image: str
    base_digest: str
    published_digest: str
    packages: dict[str, str] = field(default_factory=dict)
    # Where `harness images push` last pushed it: "<registry>/<repository>@sha256:...".
    published_ref: str = ""
    # The [<framework>.cuda] table: the CUDA variant's image id and CUDA/cuDNN versions.
    cuda: dict[str, str] = field(default_factory=dict)

    @property
    def base_ref(self) -> str:
        """The base as the Dockerfile's default names it: ``tag@digest``, or the tag alone."""
        return f"{self.base_image}@{self.base_digest}" if self.base_digest else self.base_image

    @property
    def versions_label(self) -> str:
        """The ``io.quant-harness.framework-versions`` label value for this framework."""
        return " ".join(f"{name}=={version}" for name, version in self.packages.items())


@dataclass(frozen=True)
class Lock:
    """``images/lock.toml``: bases, pins and where published images live."""

    cpu_base: str
    registry: str
    repository_prefix: str
    common_packages: dict[str, str]
    frameworks: dict[str, FrameworkLock]

    def published_repository(self, framework: str, registry: str | None = None) -> str:
        return f"{registry or self.registry}/{self.repository_prefix}-{framework}"


@dataclass(frozen=True)
class ImageRow:
    """One local harness image, as ``harness images list`` prints it."""

    framework: str
    ref: str
    id: str
    created: str
    size_mib: float
    framework_versions: str


def lock_file(root: Path | None = None) -> Path:
    """The lock file to read and write: the one in checkout ``root`` when given, else
    ``$HARNESS_IMAGE_LOCK`` or this checkout's ``images/lock.toml``."""
    if root is not None:
        return root / LOCK_RELATIVE
    return Path(os.environ.get(LOCK_ENV) or REPO_ROOT / LOCK_RELATIVE)


def load_lock(path: Path | None = None) -> Lock:
    """Read the lock file; a missing or malformed one is a one-line error."""
    path = path or lock_file()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        frameworks = {
            name: FrameworkLock(
                framework=name,
                base_image=data[name]["base_image"],
                base_digest=data[name].get("base_digest", ""),
                published_digest=data[name].get("published_digest", ""),
                packages=dict(data[name]["packages"]),
                published_ref=data[name].get("published_ref", ""),
                cuda=dict(data[name].get("cuda", {})),
            )
            for name in FRAMEWORKS
        }
        return Lock(
            cpu_base=data["cpu_base"],
            registry=data["publish"]["registry"],
            repository_prefix=data["publish"]["repository_prefix"],
            common_packages=dict(data.get("common", {}).get("packages", {})),
            frameworks=frameworks,
        )
    except FileNotFoundError as exc:
        raise HarnessError(
            f"image lock file {path} not found", "run `harness images` from a source checkout"
        ) from exc
    except (KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise HarnessError(f"image lock file {path} is malformed ({exc})", "restore it") from exc


def image_ref(framework: str, variant: str | None = None) -> str:
    """The local tag the docker backend runs: ``quant-harness/<framework>:<harness version>``,
    with ``-cuda`` for the CUDA variant (``variant`` None: ``$HARNESS_IMAGE_VARIANT``)."""
    _check_framework(framework)
    if variant is None:
        variant = os.environ.get(VARIANT_ENV, "")
    if variant not in VARIANTS:
        raise HarnessError(
            f"unknown image variant '{variant}' (${VARIANT_ENV})",
            f"set ${VARIANT_ENV} to 'cuda' or leave it unset",
        )
    return f"{LOCAL_REPOSITORY}/{framework}:{__version__}{'-' + variant if variant else ''}"


def docker_client(timeout: int = 10, fix: str = DOCKER_FIX) -> Any:
    """A connected Docker SDK client, or a one-line error naming ``fix``."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:
        raise HarnessError("the Docker SDK is not installed", "pip install -e '.[docker]'") from exc
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        from harness.launch.docker import engine_address

        raise HarnessError(f"no Docker engine answers at {engine_address()}", fix) from exc
    return client


def build(
    frameworks: Iterable[str],
    base: str | None = None,
    wheels: Path | None = None,
    progress: Progress = print,
) -> list[str]:
    """Build each framework's image; return the refs built.

    ``base`` replaces the Dockerfile's default (the pinned CUDA image), e.g. the local CPU
    base. A PyTorch image on a non-default base gets the host's torch wheel (the CPU build
    here) in its context, because pip inside would fetch the multi-GB CUDA build instead.
    """
    frameworks = [_check_framework(name) for name in frameworks]
    load_lock()  # fail on a broken lock before any slow work
    client = docker_client()
    built = []
    for framework in frameworks:
        with tempfile.TemporaryDirectory(prefix=f"harness-build-{framework}-") as tmp:
            context = _assemble_context(Path(tmp), framework)
            wheel_dir = context / "images" / framework / "wheels"
            if wheels is not None:
                _copy_wheels(wheels, wheel_dir)
            elif framework == "pytorch" and base:
                _download_torch_wheel(wheel_dir, progress)
            buildargs = {"VERSION": __version__, "REVISION": _git_revision()}
            if base:
                buildargs["BASE_IMAGE"] = base
            ref = image_ref(framework, variant="")
            progress(f"building {ref} from {base or 'the pinned base'}")
            chunks = client.api.build(
                path=str(context),
                dockerfile=f"images/{framework}/Dockerfile",
                buildargs=buildargs,
                tag=ref,
                rm=True,
                forcerm=True,
                decode=True,
            )
            _follow(chunks, progress, f"building {ref}")
            built.append(ref)
    return built


def list_images(client: Any | None = None) -> list[ImageRow]:
    """Every local ``quant-harness/<framework>`` image, newest first per framework."""
    client = client or docker_client()
    rows = []
    for framework in FRAMEWORKS:
        for image in client.images.list(name=f"{LOCAL_REPOSITORY}/{framework}"):
            attrs = image.attrs
            rows.append(
                ImageRow(
                    framework=framework,
                    # An image can carry several names: show the one asked for.
                    ref=next(
                        (t for t in image.tags if t.startswith(f"{LOCAL_REPOSITORY}/{framework}:")),
                        image.short_id,
                    ),
                    id=image.short_id.removeprefix("sha256:"),
                    created=str(attrs.get("Created", ""))[:19].replace("T", " "),
                    size_mib=round(attrs.get("Size", 0) / 2**20, 1),
                    framework_versions=(image.labels or {}).get(VERSIONS_LABEL, ""),
                )
            )
    return rows


# -- helpers -------------------------------------------------------------------------------


def missing_images(frameworks: Iterable[str] = FRAMEWORKS) -> list[str]:
    """Local image refs that are not in the engine (assumes the engine answers)."""
    import docker

    client = docker_client()
    missing = []
    for name in frameworks:
        try:
            client.images.get(image_ref(name))
        except docker.errors.ImageNotFound:
            missing.append(image_ref(name))
    return missing


def _check_framework(name: str) -> str:
    if name not in FRAMEWORKS:
        raise HarnessError(f"unknown framework '{name}'", f"use one of: {', '.join(FRAMEWORKS)}")
    return name


def _assemble_context(root: Path, framework: str) -> Path:
    """Copy only what the Dockerfile reads: a small context, and no repo files touched.

    The layout mirrors the repository, so the same Dockerfile builds with context ``.``
    (CI) and here.
    """
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(
        REPO_ROOT / "shared" / "harness_contract", root / "shared" / "harness_contract", ignore=skip
    )
    shutil.copytree(REPO_ROOT / "images" / framework, root / "images" / framework, ignore=skip)
    return root


def _copy_wheels(source: Path, target: Path) -> None:
    found = sorted(Path(source).glob("*.whl"))
    if not found:
        raise HarnessError(f"no .whl files in {source}", "pass a folder that holds wheels")
    target.mkdir(parents=True, exist_ok=True)
    for wheel in found:
        try:  # a hard link avoids copying a 200 MB wheel when both sit on one filesystem
            os.link(wheel, target / wheel.name)
        except OSError:
            shutil.copy2(wheel, target / wheel.name)


def _download_torch_wheel(target: Path, progress: Progress) -> None:
    """Fetch the torch wheel the host's pip resolves (the CPU build on these machines)."""
    torch_pin = load_lock().frameworks["pytorch"].packages["torch"]
    progress(f"fetching torch=={torch_pin} for the image with the host's pip")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"torch=={torch_pin}",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(target),
        ],  # fmt: skip
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(
            f"could not fetch the torch wheel for the image ({last})",
            "pass --wheels DIR holding a torch CPU wheel",
        )


def _follow(chunks: Iterator[dict[str, Any]], progress: Progress, action: str) -> None:
    """Relay a build/pull/push stream line by line; an error chunk becomes a HarnessError."""
    from docker.errors import APIError, BuildError

    pending = ""  # build output arrives in arbitrary pieces: emit whole lines only
    last = ""
    try:
        for chunk in chunks:
            if "error" in chunk:
                detail = str(chunk.get("error", "")).strip() or last
                raise HarnessError(f"{action} failed: {detail}", _failure_fix(action))
            if "stream" in chunk:
                pending += str(chunk["stream"])
            elif chunk.get("status"):
                pending += f"{chunk['status']} {chunk.get('progress', '')}".rstrip() + "\n"
            *lines, pending = pending.split("\n")
            for line in lines:
                if line.strip():
                    last = line.strip()
                    progress(line.rstrip())
    except (APIError, BuildError) as exc:
        raise HarnessError(f"{action} failed: {exc}", _failure_fix(action)) from exc
    if pending.strip():
        progress(pending.rstrip())


def _failure_fix(action: str) -> str:
    if action.startswith("building"):
        return (
            "read the build log above; for a CPU build pass --base quant-harness/cpu-base:bookworm"
        )
    return "check the registry is reachable and the digest in images/lock.toml"


def _local_image(client: Any, framework: str) -> Any:
    from docker.errors import ImageNotFound

    try:
        return client.images.get(image_ref(framework, variant=""))
    except ImageNotFound as exc:
        raise HarnessError(
            f"image {image_ref(framework, variant='')} not found",
            f"build it with `harness images build {framework}`",
        ) from exc


def _git_revision() -> str:
    """The commit being built, for the OCI revision label; read-only git call."""
    try:
        result = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"
