"""A learnable synthetic dataset, written in the official CIFAR-10 python format.

The dataset is written into a temporary folder beside its destination and renamed into
place (``atomic.atomic_dir``), so an interrupted or failed write never leaves a folder
that a later run would take for a dataset. Before any work the destination is checked:
it must not hold a dataset already, and the data must fit on its disk and in memory.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness_contract.data.cifar_format import (
    BATCH_FILES_TRAIN,
    BATCHES_DIR,
    DEFAULT_LABEL_NAMES,
    META_FILE,
    NUM_CLASSES,
    ROW_BYTES,
    SUMS_FILE,
    SYNTHETIC_MARKER,
    TEST_FILE,
    dataset_kind,
    holds_dataset,
)
from harness_contract.errors import DataError
from harness_contract.fs import room
from harness_contract.fs.atomic import atomic_dir, write_file_durably
from harness_contract.fs.oserrors import os_error

# Peak memory while generating one batch, per image: float32 pattern, noise and their
# sum (measured at ~16 bytes per pixel byte); reading the data back later takes ~2 copies.
GENERATE_BYTES_PER_IMAGE = 17 * ROW_BYTES
LOAD_COPIES = 2
PICKLE_BYTES_PER_IMAGE = ROW_BYTES + 8  # pixels plus a label, as pickle stores them
DISK_OVERHEAD = 64 << 10  # the meta, marker and checksum files

SMALLER = "ask for fewer images (--train-per-batch, --test)"
ELSEWHERE = "choose a writable directory with free space"


def write_synthetic(
    root: Path,
    train_per_batch: int = 1000,
    test_count: int = 1000,
    seed: int = 0,
    *,
    smaller: str = SMALLER,
    elsewhere: str = ELSEWHERE,
    replace: bool = False,
) -> Path:
    """Write a synthetic dataset into ``root/cifar-10-batches-py``; return that folder.

    ``smaller`` and ``elsewhere`` are the fixes offered when the data does not fit or
    cannot be written there (the cache passes its own). ``replace``: a synthetic dataset
    this harness wrote there (damaged, say) is replaced whole; real data never is.
    """
    for key, value in (("train_per_batch", train_per_batch), ("test_count", test_count)):
        if value < 1:
            raise DataError(f"{key} must be >= 1, got {value}", f"pass a positive {key}")
    root = Path(root)
    batches = root / BATCHES_DIR
    replacing = replace and _replaceable(root)
    if not replacing:
        _refuse_a_dataset(root)
    _check_writable(root, elsewhere)
    _check_room(root, train_per_batch, test_count, smaller, elsewhere)
    old = root / f".{BATCHES_DIR}.replaced-{os.getpid()}"
    try:
        if replacing:
            batches.rename(old)  # kept until the new folder is whole, then removed
        with atomic_dir(batches) as tmp:
            _write_files(tmp, train_per_batch, test_count, seed)
    except BaseException as exc:
        if replacing and old.exists() and not batches.exists():
            old.rename(batches)  # a failed replacement leaves the old folder as it was
        if isinstance(exc, OSError):
            raise os_error(exc, root, elsewhere, writing=True, error=DataError) from None
        raise
    if replacing:
        shutil.rmtree(old, ignore_errors=True)
    return batches


def _replaceable(root: Path) -> bool:
    """Whether ``--force`` may replace what is there: nothing, or a synthetic dataset this
    harness wrote in ``root/cifar-10-batches-py``. Real data, or data straight in ``root``,
    is refused naming it."""
    batches = root / BATCHES_DIR
    if root.is_dir() and holds_dataset(root):
        raise DataError(
            f"{root} holds CIFAR-10 files itself, not in a {BATCHES_DIR} folder; "
            "--force replaces only a synthetic dataset this harness wrote",
            f"pass the folder above it, or delete {root} first",
        )
    if not batches.is_dir() or not holds_dataset(batches):
        return False
    if dataset_kind(batches) != "synthetic":
        raise DataError(
            f"{batches} holds a real CIFAR-10 dataset; --force replaces only synthetic data "
            "this harness wrote, never real data",
            "choose another directory, or delete that folder yourself if you mean to",
        )
    return True


def _refuse_a_dataset(root: Path) -> None:
    """Never write over a dataset, real or synthetic, whole or partial."""
    for folder in (root / BATCHES_DIR, root):
        if folder.is_dir() and holds_dataset(folder):
            kind = dataset_kind(folder)
            fix = "choose another directory, or delete that folder first"
            if kind == "synthetic" and folder == root / BATCHES_DIR:
                fix = f"pass --force to replace it (synthetic data only), or {fix}"
            raise DataError(
                f"{folder} already holds a {kind} CIFAR-10 dataset; refusing to overwrite it",
                fix,
            )


def _check_writable(root: Path, elsewhere: str) -> None:
    """Refuse a read-only or unwritable destination before generating anything."""
    folder = room.existing_ancestor(root)
    if not os.access(folder, os.W_OK | os.X_OK):
        where = "" if folder == root.absolute() else f" ({folder} is the nearest existing folder)"
        raise DataError(
            f"cannot write to {root}: it is read-only or not writable{where}", elsewhere
        )


def disk_bytes(images: int) -> int:
    """About how many bytes a synthetic dataset of ``images`` images takes on disk."""
    return images * PICKLE_BYTES_PER_IMAGE + DISK_OVERHEAD


def _check_room(root: Path, per_batch: int, test: int, smaller: str, elsewhere: str) -> None:
    images = 5 * per_batch + test
    memory = max(max(per_batch, test) * GENERATE_BYTES_PER_IMAGE, images * ROW_BYTES * LOAD_COPIES)
    room.check_room(
        root,
        f"synthetic data of {images} images",
        disk_bytes=disk_bytes(images),
        memory_bytes=memory,
        disk_fix=f"{smaller}, or {elsewhere}",
        memory_fix=f"{smaller}, or free some memory",
    )


def _write_files(folder: Path, per_batch: int, test: int, seed: int) -> None:
    marker = (
        "Synthetic CIFAR-10-format data, not real images: written by "
        f"harness_contract.data.cifar.write_synthetic(train_per_batch={per_batch}, "
        f"test_count={test}, seed={seed}).\n"
    ).encode()
    digests: dict[str, str] = {}
    # One file at a time: only one batch is ever held in memory.
    files = itertools.chain([(SYNTHETIC_MARKER, marker)], _synth_files(per_batch, test, seed))
    for name, blob in files:
        write_file_durably(folder / name, blob)
        digests[name] = hashlib.sha256(blob).hexdigest()
    sums = "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))
    write_file_durably(folder / SUMS_FILE, sums.encode())


# ---------------------------------------------------------------------------------------
# The images


def _templates(rng: np.random.Generator) -> np.ndarray:
    """One low-frequency colour pattern per class: a 4x4 RGB grid blown up to 32x32."""
    coarse = rng.uniform(30, 225, size=(NUM_CLASSES, 4, 4, 3)).astype(np.float32)
    return coarse.repeat(8, axis=1).repeat(8, axis=2)


def _balanced_labels(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.permutation(np.arange(count) % NUM_CLASSES).astype(np.int64)


def _synth_images(
    rng: np.random.Generator, templates: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """Shifted, brightness-jittered, noisy class templates as (N, 3072) CHW uint8 rows.

    The jitter is tuned so a nearest-class-mean on raw pixels scores about 95%, not 100%:
    a small CNN learns it in an epoch, yet accuracy is not saturated, so int8 losses show.
    """
    n = labels.size
    dy, dx = rng.integers(-4, 5, size=(2, n))
    rows = (np.arange(32)[None, :] - dy[:, None]) % 32
    cols = (np.arange(32)[None, :] - dx[:, None]) % 32
    base = templates[labels[:, None, None], rows[:, :, None], cols[:, None, :]]
    brightness = rng.uniform(0.6, 1.4, size=(n, 1, 1, 1)).astype(np.float32)
    noise = rng.normal(0.0, 32.0, size=base.shape).astype(np.float32)
    pixels = np.clip(base * brightness + noise, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)).reshape(n, ROW_BYTES)


def _batch_blob(label: str, data: np.ndarray, labels: np.ndarray) -> bytes:
    return pickle.dumps({"batch_label": label, "labels": labels.tolist(), "data": data}, protocol=2)


def _synth_files(train_per_batch: int, test_count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """(file name, bytes) of every batch file and the meta file, generated one at a time."""
    rng = np.random.default_rng(seed)
    templates = _templates(rng)
    for i, name in enumerate(BATCH_FILES_TRAIN, start=1):
        labels = _balanced_labels(rng, train_per_batch)
        data = _synth_images(rng, templates, labels)
        yield name, _batch_blob(f"training batch {i} of 5", data, labels)
    labels = _balanced_labels(rng, test_count)
    data = _synth_images(rng, templates, labels)
    yield TEST_FILE, _batch_blob("testing batch 1 of 1", data, labels)
    meta = {
        "num_cases_per_batch": train_per_batch,
        "label_names": list(DEFAULT_LABEL_NAMES),
        "num_vis": ROW_BYTES,
    }
    yield META_FILE, pickle.dumps(meta, protocol=2)
