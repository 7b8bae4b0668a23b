"""Push the runner images to a registry and pull them back by digest (host side).

Where: ``--registry HOST[:PORT]``, else ``$HARNESS_REGISTRY`` (a lab mirror needs no edit
of the tracked lock), else ``[publish].registry`` in the lock. The images live there as
``<registry>/<repository_prefix>-<framework>``. A push records each digest and reference
in the lock file (``$HARNESS_IMAGE_LOCK`` or images/lock.toml); a pull fetches exactly
that digest and checks the image it got before tagging it for the Docker backend.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.images.build import (
    VERSIONS_LABEL,
    Lock,
    _check_framework,
    _local_image,
    docker_client,
    image_ref,
    load_lock,
    lock_file,
)
from harness.images.publish_lock import record_published
from harness_contract import __version__
from harness_contract.errors import HarnessError

REGISTRY_ENV = "HARNESS_REGISTRY"
BASE_LABEL = "io.quant-harness.base"
# A push or pull streams for minutes; the SDK's short default would cut it off.
TRANSFER_TIMEOUT_S = 1800
NAME_REGISTRY = f"name another with --registry HOST[:PORT] or ${REGISTRY_ENV}"

Progress = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Pushed:
    framework: str
    reference: str  # "<registry>/<repository>@sha256:..."
    digest: str


def registry_for(lock: Lock, registry: str | None = None) -> str:
    """``--registry``, else ``$HARNESS_REGISTRY``, else the lock's release registry."""
    return (registry or os.environ.get(REGISTRY_ENV) or lock.registry).rstrip("/")


# -- push ------------------------------------------------------------------------------------


def push(
    frameworks: Iterable[str],
    registry: str | None = None,
    allow_cpu_base: bool = False,
    progress: Progress = print,
) -> list[Pushed]:
    """Push each local image and record its digest in the lock as soon as it is pushed.

    Every image is checked before the first byte is sent: a CPU-base build never reaches
    the release registry unless ``allow_cpu_base``. The images go at the same time (the
    engine compresses each one's layers on a core of its own).
    """
    frameworks = [_check_framework(name) for name in frameworks]
    path = lock_file()
    lock = load_lock(path)
    target = registry_for(lock, registry)
    client = docker_client()
    local = {name: _local_image(client, name) for name in frameworks}
    if target == lock.registry and not allow_cpu_base:
        for name, image in local.items():
            _refuse_non_release_base(name, image, lock)
    recording = threading.Lock()  # one writer of the lock file at a time

    def push_one(name: str) -> Pushed:
        client = docker_client()  # a connection of this thread's own
        client.api.timeout = TRANSFER_TIMEOUT_S
        say = _labelled(progress, name, len(frameworks))
        remote = lock.published_repository(name, target)
        local[name].tag(remote, __version__)
        say(f"pushing {remote}:{__version__}")
        action = f"push {remote}:{__version__}"
        stream = _call(
            lambda: client.api.push(remote, tag=__version__, stream=True, decode=True),
            action,
            target,
        )
        digest = follow_layers(stream, say, action, target)
        digest = digest or _repo_digest(client, name, remote)
        reference = f"{remote}@{digest}"
        with recording:
            record_published(path, name, digest, reference)
        say(f"recorded {reference} in {path}")
        return Pushed(name, reference, digest)

    return _all_at_once(frameworks, push_one)


def _labelled(progress: Progress, framework: str, transfers: int) -> Progress:
    """Progress lines that name their image when more than one transfer runs."""
    if transfers == 1:
        return progress
    return lambda line: progress(f"{framework}: {line.strip()}")


def _all_at_once(frameworks: list[str], work: Callable[[str], T]) -> list[T]:
    """``work(name)`` for every framework in threads of its own, results in framework
    order. Each runs to its end (a pushed digest is recorded even when the other push
    fails); then the first failure is raised. Daemon threads, so Ctrl-C still stops the
    command at once (the engine finishes or drops a transfer itself)."""
    results: dict[str, T] = {}
    errors: dict[str, BaseException] = {}

    def run(name: str) -> None:
        try:
            results[name] = work(name)
        except BaseException as exc:  # re-raised in the caller's thread below
            errors[name] = exc

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in frameworks]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.5)  # a bare join() would not see Ctrl-C
    for name in frameworks:
        if name in errors:
            raise errors[name]
    return [results[name] for name in frameworks]


def _refuse_non_release_base(framework: str, image: Any, lock: Lock) -> None:
    entry = lock.frameworks[framework]
    base = (image.labels or {}).get(BASE_LABEL, "")
    if base in (entry.base_ref, entry.base_image):
        return
    raise HarnessError(
        f"the local {framework} image was built FROM {base or 'an unrecorded base'}, not the "
        f"release base {entry.base_ref}; nothing was pushed to the release registry "
        f"{lock.registry}",
        "rebuild with `harness images build` (no --base), push elsewhere with --registry, "
        "or pass --allow-cpu-base",
    )


def _repo_digest(client: Any, framework: str, remote: str) -> str:
    """The pushed digest from the image's RepoDigests, when the stream did not name it."""
    image = _local_image(client, framework)
    image.reload()
    for entry in image.attrs.get("RepoDigests") or []:
        if entry.startswith(remote + "@"):
            return entry.split("@", 1)[1]
    raise HarnessError(
        f"the registry did not report a digest for {remote}",
        "push again; images/lock.toml was not changed for this image",
    )


# -- pull ------------------------------------------------------------------------------------


def pull(
    frameworks: Iterable[str], registry: str | None = None, progress: Progress = print
) -> list[str]:
    """Pull each locked digest, check it, and tag it as the backend's local ref; the
    images come at the same time."""
    frameworks = [_check_framework(name) for name in frameworks]
    path = lock_file()
    lock = load_lock(path)
    missing = [name for name in frameworks if not lock.frameworks[name].published_digest]
    if missing:
        raise HarnessError(
            f"no published image digest recorded in {path} for {', '.join(missing)}",
            "build the images locally with `harness images build`, or check out a release tag",
        )
    target = registry_for(lock, registry)
    docker_client()  # no engine: one line before any thread starts

    def pull_one(name: str) -> str:
        client = docker_client()  # a connection of this thread's own
        client.api.timeout = TRANSFER_TIMEOUT_S
        say = _labelled(progress, name, len(frameworks))
        entry = lock.frameworks[name]
        remote = lock.published_repository(name, target)
        reference = f"{remote}@{entry.published_digest}"
        say(f"pulling {reference}")
        action = f"pull {reference}"
        stream = _call(
            lambda: client.api.pull(remote, tag=entry.published_digest, stream=True, decode=True),
            action,
            target,
        )
        follow_layers(stream, say, action, target)
        image = _call(lambda: client.images.get(reference), action, target)
        problems = verify_image(image, reference, lock, name)
        if problems:
            raise HarnessError(
                f"the image pulled as {reference} does not match {path}: {'; '.join(problems)}",
                "check the registry serves the published image (--registry / "
                f"${REGISTRY_ENV}) and the lock is the release's",
            )
        # Published images are the default variant, whatever $HARNESS_IMAGE_VARIANT says.
        local_repository, _, local_tag = image_ref(name, variant="").rpartition(":")
        image.tag(local_repository, local_tag)
        return f"{image_ref(name, variant='')} = {reference}"

    return _all_at_once(frameworks, pull_one)


def verify_image(image: Any, reference: str, lock: Lock, framework: str) -> list[str]:
    """What about ``image`` disagrees with the lock: its repo digest and version label."""
    problems = []
    if reference not in (image.attrs.get("RepoDigests") or []):
        problems.append(f"its repo digests are {image.attrs.get('RepoDigests') or 'none'}")
    want = lock.frameworks[framework].versions_label
    found = (image.labels or {}).get(VERSIONS_LABEL, "")
    if found != want:
        problems.append(f"its label {VERSIONS_LABEL} is {found!r}, the lock pins {want!r}")
    return problems


# -- the engine's stream and errors ---------------------------------------------------------


def follow_layers(
    chunks: Iterator[dict[str, Any]], progress: Progress, action: str, registry: str
) -> str | None:
    """One progress line per layer and status change (not per byte count); the pushed
    digest when the stream names it. An error chunk becomes a one-line HarnessError."""
    seen: dict[str, str] = {}
    digest = None
    for chunk in _stream(chunks, action, registry):
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("error") or (chunk.get("errorDetail") or {}).get("message", "")
            raise registry_error(action, registry, str(detail))
        aux = chunk.get("aux") or {}
        digest = aux.get("Digest") or digest
        status, layer = chunk.get("status"), chunk.get("id")
        if not status:
            continue
        if layer:
            if seen.get(layer) == status:
                continue
            seen[layer] = status
            progress(f"  {layer}: {status}")
        else:
            progress(f"  {status}")
    return digest


def _stream(
    chunks: Iterator[dict[str, Any]], action: str, registry: str
) -> Iterator[dict[str, Any]]:
    iterator = iter(chunks)
    while True:
        try:
            chunk = _call(lambda: next(iterator), action, registry)
        except StopIteration:
            return
        yield chunk


def _call(fn: Callable[[], Any], action: str, registry: str) -> Any:
    """``fn()``, with the SDK's and the transport's errors turned into one line."""
    import requests
    from docker.errors import APIError, DockerException

    try:
        return fn()
    except APIError as exc:
        detail = str(exc.explanation or exc)
        raise registry_error(action, registry, detail, exc.status_code) from exc
    except (requests.exceptions.RequestException, DockerException) as exc:
        raise HarnessError(
            f"the Docker engine stopped answering during {action} ({exc.__class__.__name__})",
            "check the engine (harness doctor) and rerun",
        ) from exc


def registry_error(
    action: str, registry: str, detail: str, status: int | None = None
) -> HarnessError:
    """Registry down, credentials wanted, image unknown, or else: one line and its fix."""
    detail = " ".join(detail.split())
    low = detail.lower()
    down = ("connection refused", "no such host", "i/o timeout", "dial tcp", "no route to host")
    auth = ("unauthorized", "authentication required", "denied", "no basic auth", "credentials")
    unknown = ("manifest unknown", "not found", "unknown blob", "does not exist")
    if any(word in low for word in down):
        return HarnessError(
            f"the registry {registry} does not answer ({action}: {detail})",
            f"start it or check the address, or {NAME_REGISTRY}",
        )
    if status in (401, 403) or any(word in low for word in auth):
        return HarnessError(
            f"the registry {registry} asks for credentials ({action}: {detail})",
            f"log in with `docker login {registry}` and rerun",
        )
    if status == 404 or any(word in low for word in unknown):
        return HarnessError(
            f"the registry {registry} does not have that image ({action}: {detail})",
            f"check published_digest in the image lock ({lock_file()}) and the registry, "
            f"or {NAME_REGISTRY}",
        )
    return HarnessError(f"{action} failed ({detail})", f"check the registry {registry} and rerun")
