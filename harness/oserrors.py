"""An OSError as one line naming the path and the fix: disk full, read-only, no access."""

from __future__ import annotations

import errno
from pathlib import Path

from harness_contract.errors import HarnessError

_PROBLEMS = {
    errno.ENOSPC: ("the disk is full", "free some space, or pass --results on another disk"),
    errno.EDQUOT: ("the disk quota is used up", "free some space, or pass --results elsewhere"),
    errno.EROFS: ("the file system is read-only", "pass --results on a writable file system"),
    errno.EACCES: ("permission denied", "fix its permissions, or pass a writable --results"),
    errno.EPERM: ("operation not permitted", "fix its permissions, or pass a writable --results"),
    errno.EISDIR: ("it is a directory where a file is expected", "pass a file path"),
    errno.ENOTDIR: ("part of the path is a file, not a directory", "check the path"),
    errno.ENOENT: ("no such file or directory", "check the path"),
}


def os_error(exc: OSError, path: Path | str | None = None, fix: str | None = None) -> HarnessError:
    """The one-line HarnessError for ``exc`` met while working on ``path``."""
    where = exc.filename or path or "a file"
    problem, errno_fix = _PROBLEMS.get(exc.errno or 0, (exc.strerror or str(exc), None))
    return HarnessError(f"{where}: {problem}", errno_fix or fix or "check the path and try again")
