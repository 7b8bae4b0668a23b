"""OS errors as one line naming the path and the fix (disk full, read-only, no access...),
and whether a process still runs: shared by the host, the data writers and the run lock."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from harness_contract.errors import HarnessError

_PROBLEMS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "it is a directory where a file is expected",
    errno.ENOTDIR: "part of the path is a file, not a directory",
    errno.ENOENT: "no such file or directory",
}
_FULL = (errno.ENOSPC, errno.EDQUOT)  # the fix starts with freeing space


def os_error(
    exc: OSError,
    path: Path | str | None = None,
    fix: str = "check the path and its permissions",
    *,
    writing: bool = False,
    error: type[HarnessError] = HarnessError,
) -> HarnessError:
    """``exc``, met while working on ``path``, as one line with ``fix`` (the caller's way
    around it). ``writing``: say "cannot write to <path>" and name ``path`` rather than
    the file the OS named (a data writer names the folder it was filling)."""
    problem = _PROBLEMS.get(exc.errno or 0, exc.strerror or str(exc))
    if writing:
        what = f"cannot write to {path or exc.filename}"
    else:
        what = str(exc.filename or path or "a file")
    if exc.errno in _FULL:
        fix = f"free space there, or {fix}"
    return error(f"{what}: {problem}", fix)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (another user's live process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
