"""Unpacking a tar archive so that nothing lands outside its folder, on every Python the
harness meets: Debian bookworm's 3.11.2 (the images' own) has no extraction filters."""

from __future__ import annotations

import tarfile
from pathlib import Path


def extract_inside(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract ``tar`` under ``dest``: plain files and folders inside it only.

    Uses tarfile's "data" filter where it exists (3.11.4 and later), which also strips
    a leading slash; before that, refuses a link, a device or a name reaching outside
    ``dest`` itself, before anything is written. Raises the filter's tarfile.TarError or
    a ValueError naming the member."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    inside = dest.resolve()
    for member in tar.getmembers():
        target = (inside / member.name).resolve()
        if not (member.isfile() or member.isdir()) or not target.is_relative_to(inside):
            raise ValueError(f"{member.name}: not a plain file inside {dest}")
    tar.extractall(dest)
