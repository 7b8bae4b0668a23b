"""The digest of every model file a variant saved (its ``artifacts`` in metrics.json), so a
rerun can be checked bit for bit. The host verifies a finished run's artifacts with the
same code the runner recorded them with."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness_contract.fs.disk import sha256_file
from harness_contract.metrics.figures import ArtifactDigest

__all__ = ["artifact_digest", "artifact_digests", "sha256_file"]


def _files(path: Path) -> list[Path]:
    """A file, or every file inside a folder (a SavedModel), one by one."""
    if path.is_dir():
        return [p for p in path.rglob("*") if p.is_file()]
    if path.is_file():
        return [path]
    # A runner declared a file it did not write: a bug, not a user error.
    raise FileNotFoundError(f"saved model file {path} does not exist")


def artifact_digest(path: Path, root: Path) -> ArtifactDigest:
    """One file's digest, named relative to ``root`` (the framework directory); a file
    outside ``root`` raises ValueError."""
    path = Path(path)
    return ArtifactDigest(
        file=path.relative_to(root).as_posix(),
        sha256=sha256_file(path),
        bytes=path.stat().st_size,
    )


def artifact_digests(paths: Iterable[Path], root: Path) -> list[ArtifactDigest]:
    """Digests of every file under ``paths`` (folders expanded), sorted by name."""
    files = {f for p in paths for f in _files(Path(p))}
    return sorted((artifact_digest(f, Path(root)) for f in files), key=lambda a: a.file)
