"""Room on disk and in memory, checked before writing or building something large."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness_contract.errors import DataError, HarnessError

MEMINFO = Path("/proc/meminfo")


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get without swapping; None when unknown."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def existing_ancestor(path: Path) -> Path:
    """``path`` itself if it exists, else the nearest folder above it that does."""
    existing = Path(path).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def free_disk(path: Path) -> int | None:
    """Free bytes on the file system that holds ``path`` (or would, once created); None
    when unknown, or for a pseudo file system (/proc, /sys) that reports no size."""
    try:
        usage = shutil.disk_usage(existing_ancestor(path))
    except OSError:
        return None
    return usage.free if usage.total else None


def size_text(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def check_room(
    path: Path,
    what: str,
    disk_bytes: int,
    memory_bytes: int,
    disk_fix: str,
    memory_fix: str,
    error: type[HarnessError] = DataError,
) -> None:
    """Refuse, with the figures, when ``what`` would not fit on disk at ``path`` or in memory."""
    free = free_disk(path)
    if free is not None and disk_bytes > free:
        raise error(
            f"{what} needs about {size_text(disk_bytes)} on disk, "
            f"but {path} has {size_text(free)} free",
            disk_fix,
        )
    available = available_memory()
    if available is not None and memory_bytes > available:
        raise error(
            f"{what} needs about {size_text(memory_bytes)} of memory, "
            f"but this machine has {size_text(available)} available",
            memory_fix,
        )
