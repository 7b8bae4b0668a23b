"""Bytes on disk of a trace: one file (a Perfetto JSON) or a whole directory (TensorBoard)."""

from __future__ import annotations

from pathlib import Path


def size_on_disk(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size
