"""Which image a Docker run uses, as fields, and whether it is the locked one.

When the image lock records a published digest for the framework, the local image must
carry that digest among its RepoDigests (it was pulled or pushed as exactly that
manifest); the run then names the image by digest. A local image retagged over the
backend's ref that is not that image is refused before any container starts. Without a
published digest (a local build) the run uses the local tag, and the identity has no
registry digest unless the image went through the lock's registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.images.build import Lock, load_lock, lock_file
from harness.images.publish import registry_for
from harness_contract.errors import HarnessError
from harness_contract.metrics import ImageIdentity

PULL_FIX = "run `harness images pull` to fetch the locked image"


@dataclass(frozen=True)
class RunImage:
    ref: str  # what the container is created from: "repo@sha256:..." or the local tag
    identity: ImageIdentity


def resolve(image: Any, framework: str, local_ref: str, lock: Lock | None = None) -> RunImage:
    """The image to run for ``framework``; a HarnessError when it is not the locked one."""
    lock = lock or load_lock()
    problem = mismatch(image, framework, local_ref, lock)
    if problem:
        raise HarnessError(problem, PULL_FIX)
    repository, _, tag = local_ref.split("@", 1)[0].rpartition(":")
    if not repository or "/" in tag:  # a ref without a tag ("host:5000/repo", "repo@sha256:")
        repository, tag = local_ref.split("@", 1)[0], ""
    digest = (
        None
        if _is_cuda_variant(local_ref)
        else _locked_repo_digest(image, framework, lock)
        or _release_repo_digest(image, framework, lock)
    )
    identity = ImageIdentity(
        repository=digest.split("@", 1)[0] if digest else repository,
        tag=tag or None,
        digest=digest,
        id=image.id,
    )
    return RunImage(ref=digest or local_ref, identity=identity)


def mismatch(image: Any, framework: str, local_ref: str, lock: Lock) -> str | None:
    """One line saying the local image is not the locked one, or None."""
    if _is_cuda_variant(local_ref):  # a local CUDA build: the published digest is not its
        return None
    locked = lock.frameworks[framework].published_digest
    if not locked or _locked_repo_digest(image, framework, lock):
        return None
    have = ", ".join(d.split("@", 1)[1][:19] for d in image.attrs.get("RepoDigests") or [])
    return (
        f"the local image {local_ref} ({image.id[:19]}, "
        f"{'repo digests ' + have if have else 'never pushed or pulled'}) is not the "
        f"{framework} image locked in {lock_file()} ({locked[:19]})"
    )


def _locked_repo_digest(image: Any, framework: str, lock: Lock) -> str | None:
    """The image's repo digest that is the locked one, preferring the lock's reference."""
    locked = lock.frameworks[framework].published_digest
    if not locked:
        return None
    found = [d for d in image.attrs.get("RepoDigests") or [] if d.endswith("@" + locked)]
    preferred = lock.frameworks[framework].published_ref
    return preferred if preferred in found else (found[0] if found else None)


def _release_repo_digest(image: Any, framework: str, lock: Lock) -> str | None:
    """A local build's digest in the configured registry, if it was pushed there."""
    remote = lock.published_repository(framework, registry_for(lock))
    found = [d for d in image.attrs.get("RepoDigests") or [] if d.startswith(remote + "@")]
    return found[0] if len(found) == 1 else None


def _is_cuda_variant(local_ref: str) -> bool:
    """``quant-harness/<fw>:<version>-cuda``: built here, never pushed (no published digest)."""
    return local_ref.split("@", 1)[0].endswith("-cuda")
