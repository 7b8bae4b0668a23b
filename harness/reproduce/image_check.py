"""With the Docker backend, the rerun should run in the images the original ran in:
``--pull`` fetches them first, and a local image that is not the recorded one is said
before the run (its bits may differ; the verdict then names the image)."""

from __future__ import annotations

from collections.abc import Callable

from harness_contract.metrics import ImageIdentity

from .original import Original


def recorded_images(original: Original) -> dict[str, ImageIdentity | None]:
    return {name: m.provenance.image for name, m in original.metrics.items()}


def pull_recorded(original: Original, say: Callable[[str], None]) -> None:
    """Pull the frameworks' images. Today's ``harness.images.pull`` fetches the digests in
    images/lock.toml (which a release records), not those in the run's metrics: the check
    below says when they are not the same image."""
    from ..images import pull

    pull(original.frameworks, progress=say)


def check_local_images(original: Original, say: Callable[[str], None]) -> None:
    """A note per framework whose local image is not the one the run recorded."""
    from ..images import docker_client, image_ref

    client = docker_client()
    for name, recorded in recorded_images(original).items():
        ref = image_ref(name)
        local = _local_id(client, ref)
        if recorded is None:
            say(f"note: {name} ran on the host; its rerun runs in {ref} ({local or 'missing'})")
        elif local != recorded.id:
            want = recorded.digest or recorded.id
            say(
                f"note: {ref} is {local or 'missing'}, not the image {name} ran in ({want}); "
                "the bits may differ (pass --pull to fetch the published images)"
            )


def _local_id(client, ref: str) -> str | None:  # noqa: ANN001 (docker SDK client)
    import docker

    try:
        return client.images.get(ref).id
    except docker.errors.ImageNotFound:
        return None
