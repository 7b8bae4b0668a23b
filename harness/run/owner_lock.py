"""One owner per run directory: the live process that writes a run holds ``<run>/.lock``.

The lock is a small JSON file (pid, host, start time, command) created with
O_CREAT|O_EXCL, so two processes can never both believe they own a run. A lock whose
process is gone (same host, no such pid) is stale and taken over with a note; a lock
from another host cannot be checked, so it is refused with the way out.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from harness_contract.errors import HarnessError
from harness_contract.fs.oserrors import pid_alive
from harness_contract.metrics import now_iso


@dataclass(frozen=True)
class LockOwner:
    pid: int
    host: str
    started_at: str
    command: str
    # The kernel's start time of the process (Linux), so a recycled pid is not mistaken
    # for the owner; None where /proc is not available.
    pid_start: str | None = None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, since {self.started_at} ({self.command})"


def _process_start(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) counts from after the command name, which may hold spaces.
    return stat.rsplit(")", 1)[-1].split()[19]


def current_owner(command: str) -> LockOwner:
    return LockOwner(
        os.getpid(), socket.gethostname(), now_iso(), command, _process_start(os.getpid())
    )


def read_owner(lock_path: Path) -> LockOwner | None:
    """The recorded owner, or None when the file is gone or unreadable (a torn write)."""
    try:
        raw = json.loads(lock_path.read_text())
        return LockOwner(
            pid=int(raw["pid"]),
            host=str(raw["host"]),
            started_at=str(raw.get("started_at", "?")),
            command=str(raw.get("command", "?")),
            pid_start=raw.get("pid_start"),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_alive(owner: LockOwner) -> bool:
    """Whether the owner still runs; only answerable on its own host."""
    if not pid_alive(owner.pid):
        return False
    if owner.pid_start is not None:
        now = _process_start(owner.pid)
        return now is None or now == owner.pid_start
    return True


def may_be_alive(owner: LockOwner) -> bool:
    """True unless the owner is known dead: one on another host cannot be checked."""
    return owner.host != socket.gethostname() or is_alive(owner)


def refuse_if_owned(run_dir: Path, lock_path: Path) -> None:
    """The refusal ``acquire`` gives for a live owner, without taking the lock (for
    readers that must never write into the run)."""
    owner = read_owner(lock_path)
    if owner is not None and may_be_alive(owner):
        raise _refusal(run_dir, lock_path, owner)


def _refusal(run_dir: Path, lock_path: Path, owner: LockOwner) -> HarnessError:
    if owner.host != socket.gethostname():
        return HarnessError(
            f"{run_dir} is owned by {owner.describe()}, which cannot be checked from here",
            f"wait for it to finish; if that run is dead, remove {lock_path} and try again",
        )
    return HarnessError(
        f"{run_dir} is in use by a live run: {owner.describe()}",
        "wait for it to finish, or stop it first; two runs must never write one directory",
    )


def _create(lock_path: Path, owner: LockOwner) -> bool:
    """Write the lock if none exists; False when another process holds one."""
    try:
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(asdict(owner)) + "\n")
    except OSError as exc:  # a full disk: the OS names no file for a failed write
        lock_path.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(lock_path)) from None
    except BaseException:
        lock_path.unlink(missing_ok=True)
        raise
    return True


def acquire(
    run_dir: Path, lock_path: Path, command: str, say: Callable[[str], None] = lambda _: None
) -> LockOwner:
    """Own ``run_dir`` or raise a HarnessError naming whoever owns it."""
    me = current_owner(command)
    for _ in range(3):  # a stale lock removed by a racing process: look again
        if _create(lock_path, me):
            return me
        owner = read_owner(lock_path)
        if owner is None:
            if lock_path.exists():
                raise HarnessError(
                    f"{lock_path} exists but cannot be read",
                    f"if no run is writing {run_dir}, remove {lock_path} and try again",
                )
            continue
        if may_be_alive(owner):
            raise _refusal(run_dir, lock_path, owner)
        # Stale: take it over only if it is still the same file we judged.
        if read_owner(lock_path) == owner:
            lock_path.unlink(missing_ok=True)
            say(f"note: taking over {run_dir} from a run that is gone ({owner.describe()})")
    raise _refusal(run_dir, lock_path, read_owner(lock_path) or me)


def release(lock_path: Path, owner: LockOwner) -> None:
    """Remove the lock if it is still ours (never another process's)."""
    if read_owner(lock_path) == owner:
        lock_path.unlink(missing_ok=True)


@contextlib.contextmanager
def held(
    run_dir: Path, lock_path: Path, command: str, say: Callable[[str], None] = lambda _: None
) -> Iterator[LockOwner]:
    """Hold the run's lock for the body, and give it back however the body ends."""
    owner = acquire(run_dir, lock_path, command, say)
    try:
        yield owner
    finally:
        release(lock_path, owner)


def command_line() -> str:
    return " ".join(["harness", *sys.argv[1:]])[:300]
