"""Ctrl-C and ``kill``: the first one stops the run cleanly (a KeyboardInterrupt the
backends turn into "stop the runner, keep its finished phases"); any further one,
while that stop is under way, never raises again in the middle of the cleanup (which
would print a traceback and orphan the runner) but asks the stop to hurry."""

from __future__ import annotations

import signal

_received = 0


def install() -> None:
    """Route SIGINT and SIGTERM here. (A shell starts background jobs with SIGINT
    ignored; this undoes that too.)"""
    global _received
    _received = 0
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def _on_signal(signum: int, frame: object) -> None:
    global _received
    _received += 1
    if _received == 1:
        raise KeyboardInterrupt


def hurry() -> bool:
    """True once the user interrupted a second time: stop the runner now, no grace."""
    return _received > 1
