"""Atomic writes: a reader sees the old file or folder or the new one, never half of one."""

from __future__ import annotations

import errno
import glob
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .oserrors import pid_alive


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; give the usual umask-derived mode so another user
        # (a container's non-root user reading data or the host reading its metrics) can.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


# ---------------------------------------------------------------- whole folders

_PARTIAL = ".partial-"


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield an empty folder beside ``final``; when the block ends, rename it to ``final``.

    Readers see ``final`` complete or not at all: an exception (Ctrl-C included) removes
    the temporary folder. When another process renamed its own complete ``final`` into
    place first, that one is kept and ours is discarded. A folder left by a writer that
    was killed (its pid is gone on this host) is swept away on the next write.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _sweep_abandoned(final)
    owner = f"{socket.gethostname()}-{os.getpid()}-"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}{_PARTIAL}{owner}", dir=final.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # readable by a container's non-root user
        yield tmp
        _fsync_dir(tmp)
        try:
            os.rename(tmp, final)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # lost the race: keep the winner's
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_file_durably(path: Path, data: bytes) -> None:
    """Write a new file inside a folder that ``atomic_dir`` will publish."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o666 & ~_umask())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sweep_abandoned(final: Path) -> None:
    """Remove temporary folders of ``final`` whose writer died on this host."""
    prefix = f".{final.name}{_PARTIAL}{socket.gethostname()}-"
    for entry in final.parent.glob(f"{glob.escape(prefix)}*"):
        pid = entry.name[len(prefix) :].split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
