"""Files on disk: bytes of a trace (one file, or a whole TensorBoard directory) and the
sha256 of a file (dataset checksums, saved model artifacts). Standard library only."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def size_on_disk(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (model files are tens of MiB)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
