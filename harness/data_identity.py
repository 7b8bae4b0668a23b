"""Which dataset a run used, by content: the same digest ``load_cifar10`` records in
metrics.json, computed from the files without parsing them (so the host can check a
dataset before a resume without loading it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness_contract.cifar import BATCH_FILES_TRAIN, TEST_FILE, resolve_root
from harness_contract.errors import DataError

CHUNK = 1 << 20


def dataset_digest(path: Path) -> str:
    """sha256 over every batch file (name, NUL, 8-byte length, bytes), train then test:
    the algorithm of ``harness_contract.cifar.load_cifar10``'s ``Cifar10.digest``."""
    root = resolve_root(path)
    digest = hashlib.sha256()
    for name in (*BATCH_FILES_TRAIN, TEST_FILE):
        file = root / name
        try:
            size = file.stat().st_size
            digest.update(name.encode() + b"\0" + size.to_bytes(8, "little"))
            with file.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            raise DataError(
                f"CIFAR-10 file {file} is missing", "point --data at a complete dataset"
            ) from None
        except OSError as exc:
            raise DataError(f"cannot read {file} ({exc.strerror or exc})") from None
    return digest.hexdigest()
