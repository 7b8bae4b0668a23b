"""Atomic writes: a reader sees the old file or folder or the new one, never half of one."""

from __future__ import annotations

import errno
import gc
import glob
import json
import os
import shutil
import socket
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness_contract.fs.oserrors import pid_alive


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all. An OS error (a full disk, say) names ``path``
    itself: the OS names no file for a failed write(), and the temporary file is gone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        # mkstemp makes 0600 files; give the usual umask-derived mode so another user
        # (a container's non-root user reading data or the host reading its metrics) can.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_via_temp(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` for a writer that needs a file name of its own (torch.save, HDF5),
    then the rename to ``path``: whole or not at all, as ``write_bytes_atomic``. ``tmp``
    has ``path``'s very name, in a temporary folder beside it (torch.save records the
    name in its archive, Keras wants ``.weights.h5``). A writer's own error on a disk that
    is full (torch says only "unexpected pos ...") is raised as ENOSPC, naming ``path``."""
    path = Path(path)
    folder = path.parent / f".{path.name}{_TEMP}{os.getpid()}"
    failure: OSError | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write(folder / path.name)
        os.replace(folder / path.name, path)
    except BaseException as exc:
        failure = _write_failure(exc, folder, path)
        if failure is None:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        # The writer's frames hold its open file: let them go, so the space comes back.
        traceback.clear_frames(exc.__traceback__)
    if failure is not None:  # raised outside the handler: nothing keeps those frames alive
        gc.collect()
        shutil.rmtree(folder, ignore_errors=True)
        raise failure
    folder.rmdir()


def _write_failure(exc: BaseException, folder: Path, path: Path) -> OSError | None:
    """The OSError naming ``path`` that ``exc`` (met writing into ``folder``) stands for:
    an OS error, or a full disk a library reports its own way; None for anything else."""
    full = full_disk_errno(exc)
    if full is None and isinstance(exc, Exception) and _nearly_full(folder):
        full = errno.ENOSPC
    if full is not None:
        return OSError(full, os.strerror(full), str(path))
    if isinstance(exc, OSError):
        return _naming(exc, path)
    return None


def write_npy_atomic(path: Path, array: Any) -> None:
    """``numpy.save`` whole or not at all."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    write_bytes_atomic(path, buffer.getvalue())


def full_disk_errno(exc: BaseException) -> int | None:
    """ENOSPC or EDQUOT when ``exc`` says the disk (or quota) is full, also where a library
    reports it in words (HDF5: "errno = 28, error message = 'No space left on device'")."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return exc.errno
    text = str(exc)
    for code in _FULL_ERRNOS:
        if f"errno = {code}," in text or os.strerror(code) in text:
            return code
    return None


_TEMP = ".saving-"
_NEARLY_FULL_BYTES = 1 << 20
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def _nearly_full(folder: Path) -> bool:
    """Whether the disk holding ``folder`` has under 1 MiB left (a failed write's cause)."""
    try:
        st = os.statvfs(folder if folder.exists() else folder.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _NEARLY_FULL_BYTES


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` naming ``path`` (not the OS's silence, nor the temporary file's name)."""
    if exc.filename is not None and Path(exc.filename).name == path.name:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


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
