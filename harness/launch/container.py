"""A runner's container once started: its log stream as lines, waiting for it to exit,
stopping it (a grace period to save its completed phases, then SIGKILL) and removing it."""

from __future__ import annotations

import codecs
import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from harness.launch.base import RunnerOutput
from harness.launch.process import GRACE_S, stop_gracefully, wait_until

if TYPE_CHECKING:
    from docker.models.containers import Container


class LogPump(threading.Thread):
    """Follows the container's log stream into the shared runner-output handling."""

    def __init__(self, container: Container, output: RunnerOutput) -> None:
        super().__init__(daemon=True)
        self.container, self.output = container, output

    def run(self) -> None:
        for line in split_lines(self.container.logs(stream=True, follow=True)):
            self.output.feed(line)

    def join(self, timeout: float | None = 10.0) -> None:
        super().join(timeout)


def split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Whole lines from a byte stream cut anywhere (even inside a UTF-8 character)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending + "\n"


def wait_exit(container: Container, timeout_s: float | None) -> bool:
    """True when the container exited, False when the timeout came first."""
    return wait_until(lambda: exited(container), timeout_s)


def stop(container: Container) -> None:
    """SIGTERM, then SIGKILL after the grace period, or at once on a second Ctrl-C
    (``container.stop`` would block through it)."""
    import docker

    def send(sig: str) -> None:
        # A kill may meet a container that has just exited on its own: that is the goal.
        with contextlib.suppress(docker.errors.APIError):
            container.kill(signal=sig)

    stop_gracefully(
        lambda: send("SIGTERM"), lambda: exited(container), lambda: send("SIGKILL"), GRACE_S
    )


def exited(container: Container) -> bool:
    container.reload()
    return container.status in ("exited", "dead")


def exit_code(container: Container) -> int | None:
    try:
        container.reload()
        return container.attrs["State"].get("ExitCode")
    except Exception:  # the code is only informative here; the outcome is already decided
        return None


def remove(container: Container) -> None:
    # Gone already, or the engine failed: neither must hide the runner's outcome.
    with contextlib.suppress(Exception):
        container.remove(force=True)
