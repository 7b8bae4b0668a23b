"""Supervising a runner, whatever runs it (a local subprocess, a container, a sweep's
point): waiting with a deadline, stopping with a grace period to save its completed
phases (a second Ctrl-C means now), and dying with the host. The one loop all use."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from harness.run import interrupts

POLL_S = 0.1
# How long a stopped runner gets to save its completed phases before it is killed.
GRACE_S = 30.0


def wait_until(done: Callable[[], bool], timeout_s: float | None) -> bool:
    """True once ``done()``; False when ``timeout_s`` (None: no limit) passed first."""
    deadline = time.monotonic() + timeout_s if timeout_s else None
    while not done():
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def stop_gracefully(
    ask: Callable[[], None], done: Callable[[], bool], kill: Callable[[], None], grace_s: float
) -> None:
    """``ask`` it to stop (a signal it handles by saving what it finished), then ``kill``
    once ``grace_s`` passed, or at once on a second Ctrl-C. Polled rather than waited on,
    so that second Ctrl-C is seen."""
    if done():
        return
    ask()
    deadline = time.monotonic() + grace_s
    while not done():
        if interrupts.hurry() or time.monotonic() > deadline:
            kill()
            return
        time.sleep(POLL_S)


def stop_process(proc: subprocess.Popen, sig: int, grace_s: float) -> None:
    """stop_gracefully for a subprocess: ``sig``, then SIGKILL (and reaped)."""

    def ask() -> None:
        with contextlib.suppress(ProcessLookupError):  # it exited on its own meanwhile
            proc.send_signal(sig)

    def kill() -> None:
        proc.kill()
        proc.wait()

    stop_gracefully(ask, lambda: proc.poll() is not None, kill, grace_s)


def die_with_parent() -> None:
    """A ``preexec_fn``: on Linux the child gets SIGTERM when the process that started it
    dies (even by SIGKILL, or a Ray worker with its node), so no runner is orphaned."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
