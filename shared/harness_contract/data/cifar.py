"""The CIFAR-10 reader (official python format), the dataset check and ``verify``.

Both runners read the dataset through ``load_cifar10`` so they see the same uint8 images
in the same order; the host runs ``check_dataset`` before a run (every file parsed and
checked, no images decoded) so a broken dataset is refused before any work starts.
The format itself (file names, the safe unpickler) is in ``cifar_format``; synthetic
data is written by ``synthetic.write_synthetic``, re-exported here.
Only the standard library and numpy are imported: the host and every runner can use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness_contract.data.cifar_format import (
    BATCH_FILES_TRAIN,
    BATCHES_DIR,
    DEFAULT_LABEL_NAMES,
    IMAGE_SHAPE,
    META_FILE,
    MISSING_FIX,
    NUM_CLASSES,
    ROW_BYTES,
    SUMS_FILE,
    SYNTHETIC_MARKER,
    TEST_FILE,
    Batch,
    broken_fix,
    dataset_kind,
    parse_batch,
    parse_label_names,
)
from harness_contract.data.synthetic import write_synthetic
from harness_contract.errors import DataError
from harness_contract.fs.disk import sha256_file

__all__ = [
    "BATCHES_DIR",
    "BATCH_FILES_TRAIN",
    "DEFAULT_LABEL_NAMES",
    "META_FILE",
    "NUM_CLASSES",
    "ROW_BYTES",
    "SUMS_FILE",
    "SYNTHETIC_MARKER",
    "TEST_FILE",
    "Cifar10",
    "DatasetSummary",
    "VerifyReport",
    "check_dataset",
    "load_cifar10",
    "resolve_root",
    "verify",
    "write_synthetic",
]


@dataclass(frozen=True)
class Cifar10:
    """Both splits as NHWC uint8 arrays, in file order (data_batch_1 first)."""

    train_images: np.ndarray  # (N, 32, 32, 3) uint8, C-contiguous
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray
    test_labels: np.ndarray
    label_names: tuple[str, ...]
    root: Path
    kind: Literal["real", "synthetic"]
    # sha256 over every batch file read (name, then bytes, in a fixed order): identifies
    # the files on disk, independent of any train/test limit.
    digest: str


@dataclass(frozen=True)
class DatasetSummary:
    """What ``check_dataset`` found: every file valid, these counts, this digest."""

    root: Path
    kind: Literal["real", "synthetic"]
    train_images: int  # in the files, before any limit
    test_images: int
    digest: str  # the same digest ``load_cifar10`` records


@dataclass(frozen=True)
class VerifyReport:
    root: Path
    kind: Literal["real", "synthetic"]
    train_images: int
    test_images: int
    train_class_counts: tuple[int, ...]
    test_class_counts: tuple[int, ...]
    checksums: Literal["ok", "absent"]


# ---------------------------------------------------------------------------------------
# Locating the dataset


def resolve_root(path: Path) -> Path:
    """Return the ``cifar-10-batches-py`` folder given it or a folder that contains it."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"CIFAR-10 directory {path} does not exist", MISSING_FIX)
    if not path.is_dir():
        raise DataError(f"CIFAR-10 path {path} is not a directory", MISSING_FIX)
    nested = path / BATCHES_DIR
    if nested.is_dir():
        return nested
    if any((path / name).exists() for name in (*BATCH_FILES_TRAIN, TEST_FILE)):
        return path
    if not any(path.iterdir()):
        raise DataError(f"CIFAR-10 directory {path} is empty", MISSING_FIX)
    raise DataError(
        f"{path} holds neither a {BATCHES_DIR} folder nor CIFAR-10 batch files", MISSING_FIX
    )


# ---------------------------------------------------------------------------------------
# Reading files


def _read_file(root: Path, name: str, digest: Any) -> bytes:
    path = root / name
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"CIFAR-10 file {path} is missing", broken_fix(path)) from None
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc})", broken_fix(path)) from None
    digest.update(name.encode() + b"\0" + len(blob).to_bytes(8, "little"))
    digest.update(blob)
    return blob


def _read_split(root: Path, names: tuple[str, ...], digest: Any) -> list[Batch]:
    return [parse_batch(root / name, _read_file(root, name, digest)) for name in names]


def _label_names(root: Path) -> tuple[str, ...]:
    path = root / META_FILE
    if not path.exists():
        return DEFAULT_LABEL_NAMES
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc})", broken_fix(path)) from None
    return parse_label_names(path, blob)


# ---------------------------------------------------------------------------------------
# Public reader and check


def _check_limit(split: str, key: str, limit: int | None, available: int, root: Path) -> int:
    if limit is None:
        return available
    if limit < 1:
        raise DataError(f"{key} must be >= 1, got {limit}", f"set {key} to a positive number")
    if limit > available:
        raise DataError(
            f"{key}={limit} asks for more {split} images than {root} holds ({available})",
            f"lower {key} to at most {available} or point --data at a larger dataset",
        )
    return limit


def _to_nhwc(batches: list[Batch], count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` images as one C-contiguous (count, 32, 32, 3) array."""
    images = np.empty((count, *IMAGE_SHAPE), dtype=np.uint8)
    labels = np.empty((count,), dtype=np.int64)
    start = 0
    for batch in batches:
        take = min(count - start, batch.data.shape[0])
        if take <= 0:
            break
        chw = batch.data[:take].reshape(take, 3, 32, 32)
        images[start : start + take] = chw.transpose(0, 2, 3, 1)
        labels[start : start + take] = batch.labels[:take]
        start += take
    return images, labels


def load_cifar10(
    path: Path, train_limit: int | None = None, test_limit: int | None = None
) -> Cifar10:
    """Read and validate every batch file, then keep the first N images of each split."""
    root = resolve_root(path)
    digest = hashlib.sha256()
    train = _read_split(root, BATCH_FILES_TRAIN, digest)
    test = _read_split(root, (TEST_FILE,), digest)
    n_train = _check_limit(
        "training", "data.train_limit", train_limit, sum(b.data.shape[0] for b in train), root
    )
    n_test = _check_limit(
        "test", "data.test_limit", test_limit, sum(b.data.shape[0] for b in test), root
    )
    train_images, train_labels = _to_nhwc(train, n_train)
    test_images, test_labels = _to_nhwc(test, n_test)
    return Cifar10(
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        label_names=_label_names(root),
        root=root,
        kind=dataset_kind(root),
        digest=digest.hexdigest(),
    )


def check_dataset(
    path: Path, train_limit: int | None = None, test_limit: int | None = None
) -> DatasetSummary:
    """Everything ``load_cifar10`` checks, without building the image arrays.

    Files are parsed one at a time (memory stays at one batch) and hashed as
    ``load_cifar10`` hashes them; a DataError names the first bad file or limit.
    """
    root = resolve_root(path)
    digest = hashlib.sha256()
    counts = [
        sum(len(parse_batch(root / n, _read_file(root, n, digest)).labels) for n in names)
        for names in (BATCH_FILES_TRAIN, (TEST_FILE,))
    ]
    _label_names(root)
    _check_limit("training", "data.train_limit", train_limit, counts[0], root)
    _check_limit("test", "data.test_limit", test_limit, counts[1], root)
    return DatasetSummary(root, dataset_kind(root), counts[0], counts[1], digest.hexdigest())


# ---------------------------------------------------------------------------------------
# Checksums and verify


def _find_sums(root: Path) -> Path | None:
    # Our synthetic writer puts SHA256SUMS beside the batches; the shared real subset keeps
    # it one level up, next to the cifar-10-batches-py folder.
    for candidate in (root / SUMS_FILE, root.parent / SUMS_FILE):
        if candidate.is_file():
            return candidate
    return None


def _parse_sums(root: Path, sums: Path) -> Iterator[tuple[str, str]]:
    try:
        lines = sums.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {sums} ({exc})", broken_fix(root / SUMS_FILE)) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        hexdigest, name = (parts[0].lower(), parts[1].lstrip("*")) if len(parts) == 2 else ("", "")
        if len(hexdigest) != 64 or not name or ".." in Path(name).parts or Path(name).is_absolute():
            raise DataError(
                f"{sums} line {number} is not '<sha256>  <file>'", broken_fix(root / SUMS_FILE)
            )
        yield hexdigest, name


def _check_sums(root: Path, sums: Path) -> None:
    for expected, name in _parse_sums(root, sums):
        # Names are relative to the SHA256SUMS folder, or to the batches folder.
        target = next((p for p in (sums.parent / name, root / name) if p.is_file()), None)
        if target is None:
            raise DataError(f"{sums} lists {name}, which is missing", broken_fix(root / name))
        actual = sha256_file(target)
        if actual != expected:
            raise DataError(
                f"{target} does not match its checksum in {sums} "
                f"(expected sha256 {expected}, got {actual})",
                broken_fix(root / name),
            )


def _class_counts(labels: np.ndarray) -> tuple[int, ...]:
    return tuple(int(c) for c in np.bincount(labels, minlength=NUM_CLASSES))


def verify(path: Path) -> VerifyReport:
    """Check SHA256SUMS (when present) first, then load and validate every file."""
    root = resolve_root(path)
    sums = _find_sums(root)
    if sums is not None:
        _check_sums(root, sums)
    data = load_cifar10(root)
    return VerifyReport(
        root=root,
        kind=data.kind,
        train_images=int(data.train_labels.size),
        test_images=int(data.test_labels.size),
        train_class_counts=_class_counts(data.train_labels),
        test_class_counts=_class_counts(data.test_labels),
        checksums="ok" if sums is not None else "absent",
    )
