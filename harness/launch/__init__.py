"""Launchers by name (``--backend``), created lazily so an unused one (and its SDK) is never
imported."""

from __future__ import annotations

from collections.abc import Callable

from harness.launch.base import Backend, LaunchRequest, LaunchResult
from harness.launch.gpus import NO_GPUS, GpuRequest, require_host_gpus
from harness_contract.errors import HarnessError

BACKENDS = ("local", "docker", "auto")


def get_backend(
    name: str, gpus: GpuRequest = NO_GPUS, say: Callable[[str], None] = lambda _: None
) -> Backend:
    """The backend to use; "auto" picks Docker when an engine answers and every image is
    present, else local, and says which and why."""
    if name == "local":
        from harness.launch.local import LocalBackend

        require_host_gpus(gpus)  # a runner in this process tree uses the host's GPUs itself
        return LocalBackend()
    if name == "docker":
        backend = _docker(gpus)
        reason = backend.unavailable_reason()
        if reason:
            raise HarnessError(reason)
        _require_engine_gpus(gpus)
        return backend
    if name == "auto":
        return _auto(gpus, say)
    raise HarnessError(f"unknown backend '{name}'", f"use one of: {', '.join(BACKENDS)}")


def _docker(gpus: GpuRequest) -> Backend:
    from harness.images.build import image_ref
    from harness.launch.docker import DockerBackend

    return DockerBackend(image_for=image_ref, gpus=gpus)


def _auto(gpus: GpuRequest, say: Callable[[str], None]) -> Backend:
    from harness.launch.local import LocalBackend

    docker = _docker(gpus)
    reason = docker.unavailable_reason()
    if reason is None:
        from harness.images.build import missing_images

        missing = missing_images()
        if not missing:
            say("backend auto: Docker engine answers and the images are here: using docker")
            _require_engine_gpus(gpus)
            return docker
        reason = f"images missing: {', '.join(missing)} (build them: harness images build)"
    say(f"backend auto: using local ({reason})")
    require_host_gpus(gpus)
    return LocalBackend()


def _require_engine_gpus(gpus: GpuRequest) -> None:
    """An engine on this host hands containers this host's GPUs: without one, `--gpus`
    fails here, before a run directory exists, rather than at each container's start.
    An engine elsewhere (DOCKER_HOST tcp:// or ssh://) says what it has when asked."""
    from harness.launch.docker import engine_address

    if engine_address().startswith("unix://"):
        require_host_gpus(gpus)


__all__ = ["BACKENDS", "Backend", "LaunchRequest", "LaunchResult", "get_backend"]
