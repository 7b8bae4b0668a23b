"""How a runner, a study, a sweep or a reproduction ended, as its process exit code: the
same four meanings on both sides of the contract (an IntEnum: it compares equal to the
plain number a process returns)."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0  # every phase asked for completed
    FAILED = 1  # complete with failures: a phase or a point failed (the rest is kept)
    USER_ERROR = 2  # a problem the user can fix, said in one line with the fix
    INTERRUPTED = 130  # Ctrl-C or SIGTERM; completed phases are kept (128 + SIGINT)

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS = {
    ExitCode.OK: "ok",
    ExitCode.FAILED: "a phase failed",
    ExitCode.USER_ERROR: "bad input",
    ExitCode.INTERRUPTED: "interrupted",
}
