"""With the Docker backend, the rerun should run in the images the original ran in. The
backend runs what the image lock names (refusing a local image that is not the locked
one), so this only says, before the run, where that differs from what the original
recorded: its bits may then differ, and the verdict's context names the image."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.reproduce.original import Original
from harness_contract.metrics import ImageIdentity


def recorded_images(original: Original) -> dict[str, ImageIdentity | None]:
    return {name: m.provenance.image for name, m in original.metrics.items()}


def pull_locked(original: Original, say: Callable[[str], None]) -> None:
    """``harness images pull`` for the run's frameworks: the digests in the image lock
    (which a release records), checked against it; registry errors are one line."""
    from harness.images.publish import pull

    for line in pull(original.frameworks, progress=say):
        say(f"pulled {line}")


def image_notes(original: Original) -> list[str]:
    """One note per framework whose rerun image is not the one the run recorded."""
    from harness.images.build import docker_client, image_ref, load_lock

    client, lock = docker_client(), load_lock()
    notes = []
    for name, recorded in recorded_images(original).items():
        ref = image_ref(name)
        local = _local_id(client, ref)
        locked = lock.frameworks[name].published_digest
        if recorded is None:
            notes.append(f"{name} ran on the host; its rerun runs in {ref} ({local or 'missing'})")
        elif recorded.digest and locked and not recorded.digest.endswith("@" + locked):
            notes.append(
                f"{name} ran in {recorded.digest}, but the image lock names {locked}: the "
                "rerun runs the locked image (use the lock of the release that made the run)"
            )
        elif local != recorded.id:
            notes.append(
                f"{ref} is {local or 'missing'}, not the image {name} ran in "
                f"({recorded.digest or recorded.id}); pass --pull to fetch the locked images"
            )
    return notes


def _local_id(client: Any, ref: str) -> str | None:
    import docker

    try:
        return client.images.get(ref).id
    except docker.errors.ImageNotFound:
        return None
