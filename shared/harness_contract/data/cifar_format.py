"""The CIFAR-10 python format on disk: file names, the safe unpickler, one batch's checks.

Batch files are pickles, which can run code when loaded; ``unpickle`` only rebuilds
numpy arrays and plain containers, so a hostile file is refused. Files re-saved by any
pickle protocol (0-5; bytes or str keys; labels as a list or an array) are accepted.
Only the standard library and numpy are imported: the host and every runner can use it.
"""

from __future__ import annotations

import _codecs
import io
import pickle
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness_contract.errors import DataError

BATCHES_DIR = "cifar-10-batches-py"
BATCH_FILES_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
SYNTHETIC_MARKER = "SYNTHETIC"
SUMS_FILE = "SHA256SUMS"

NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)
ROW_BYTES = 32 * 32 * 3
DEFAULT_LABEL_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

MISSING_FIX = (
    "run `harness data synth DIR` or `harness data fetch DIR`, "
    "or pass --data pointing at a cifar-10-batches-py folder"
)


def broken_fix(file: Path) -> str:
    """How to replace a damaged file: regenerate synthetic data, fetch real data again."""
    root = file.parent
    top = root.parent if root.name == BATCHES_DIR else root
    if (root / SYNTHETIC_MARKER).exists():
        if root.name != BATCHES_DIR:  # not where `data synth` writes: it cannot replace it
            return f"delete {root}, then make it again with `harness data synth DIR`"
        return f"regenerate it with `{synth_command(top, root / SYNTHETIC_MARKER)}`"
    return f"fetch it again with `harness data fetch {top}`"


def synth_command(top: Path, marker: Path) -> str:
    """The `harness data synth` command that writes the same synthetic data again over the
    damaged copy in ``top`` (its sizes and seed read from the marker file it wrote)."""
    args = ""
    try:
        found = re.search(
            r"train_per_batch=(\d+), test_count=(\d+), seed=(\d+)", marker.read_text()
        )
    except (OSError, UnicodeDecodeError):
        found = None
    if found:
        per_batch, test, seed = found.groups()
        args = f" --train-per-batch {per_batch} --test {test} --seed {seed}"
    return f"harness data synth {shlex.quote(str(top))}{args} --force"


def dataset_kind(root: Path) -> Literal["real", "synthetic"]:
    return "synthetic" if (root / SYNTHETIC_MARKER).exists() else "real"


def holds_dataset(folder: Path) -> bool:
    """Whether ``folder`` holds any CIFAR-10 batch file (a dataset, or part of one)."""
    names = (*BATCH_FILES_TRAIN, TEST_FILE, META_FILE, SYNTHETIC_MARKER)
    return any((folder / name).exists() for name in names)


# ---------------------------------------------------------------------------------------
# Safe unpickling


def _numpy_global(submodule: str, name: str) -> Callable[[], Any]:
    def resolve() -> Any:
        # numpy 2 moved numpy.core to numpy._core; resolve here instead of importing
        # numpy.core, which warns on numpy 2.
        core = getattr(np, "_core", None) or np.core
        return getattr(getattr(core, submodule), name)

    return resolve


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """Protocols 0-2 written by Python 3 store bytes as _codecs.encode(str, "latin1")."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"unexpected encode({type(text).__name__}, {encoding!r})")
    return _codecs.encode(text, "latin1")


def _empty_bytes() -> bytes:
    """Protocols 0-2 store b"" as bytes(); no argument, so no size to allocate."""
    return b""


def _allowed_globals() -> dict[tuple[str, str], Callable[[], Any]]:
    """Exactly what numpy needs to rebuild an ndarray, a dtype or a scalar."""
    allowed: dict[tuple[str, str], Callable[[], Any]] = {
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: _latin1_bytes,
        ("codecs", "encode"): lambda: _latin1_bytes,
        ("__builtin__", "bytes"): lambda: _empty_bytes,
        ("builtins", "bytes"): lambda: _empty_bytes,
    }
    for core in ("numpy.core", "numpy._core"):
        for name in ("_reconstruct", "scalar"):
            allowed[(f"{core}.multiarray", name)] = _numpy_global("multiarray", name)
        # Protocol 5 rebuilds a contiguous array from its buffer.
        allowed[(f"{core}.numeric", "_frombuffer")] = _numpy_global("numeric", "_frombuffer")
    return allowed


_ALLOWED = _allowed_globals()


class _ForbiddenGlobalError(pickle.UnpicklingError):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and plain containers; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWED.get((module, name))
        if factory is None:
            raise _ForbiddenGlobalError(f"{module}.{name}")
        return factory()


def unpickle(path: Path, blob: bytes) -> Any:
    """The object pickled in ``blob`` (read from ``path``), or a DataError naming the file."""
    stream = io.BytesIO(blob)
    try:
        obj = _RestrictedUnpickler(stream, encoding="bytes").load()
    except _ForbiddenGlobalError as exc:
        raise DataError(
            f"{path} refers to {exc}, which a CIFAR-10 batch never needs; refusing to load it",
            "use only files from the official archive or `harness data synth`",
        ) from None
    except EOFError:
        raise DataError(f"{path} is truncated", broken_fix(path)) from None
    except Exception as exc:  # any parse failure of a damaged file lands here
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason:
            raise DataError(f"{path} is truncated ({reason})", broken_fix(path)) from None
        raise DataError(
            f"{path} is not a valid CIFAR-10 pickle ({reason})", broken_fix(path)
        ) from None
    if stream.tell() != len(blob):
        extra = len(blob) - stream.tell()
        raise DataError(f"{path} has {extra} unexpected bytes after the pickle", broken_fix(path))
    return obj


def str_keys(path: Path, obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise DataError(
            f"{path} holds a {type(obj).__name__}, not a CIFAR-10 batch dict", broken_fix(path)
        )
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


# ---------------------------------------------------------------------------------------
# One batch


@dataclass(frozen=True)
class Batch:
    data: np.ndarray  # (N, 3072) uint8, CHW rows
    labels: np.ndarray  # (N,) int64


def _batch_data(path: Path, batch: dict[str, Any]) -> np.ndarray:
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        dtype = getattr(data, "dtype", type(data).__name__)
        raise DataError(f"{path}: 'data' must be a uint8 array, got {dtype}", broken_fix(path))
    if data.ndim != 2 or data.shape[1] != ROW_BYTES:
        raise DataError(
            f"{path}: 'data' must have shape (N, {ROW_BYTES}), got {data.shape}", broken_fix(path)
        )
    if data.shape[0] == 0:
        raise DataError(f"{path} has no images (a batch of 0 rows)", broken_fix(path))
    return data


def _batch_labels(path: Path, batch: dict[str, Any], rows: int) -> np.ndarray:
    raw = batch["labels"]
    labels = np.asarray(raw) if isinstance(raw, list | tuple | np.ndarray) else None
    if labels is None or labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise DataError(f"{path}: 'labels' must be a list of integers", broken_fix(path))
    if labels.size != rows:
        raise DataError(
            f"{path} has {labels.size} labels but {rows} images; they must match", broken_fix(path)
        )
    labels = labels.astype(np.int64, copy=False)
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if bad.size:
        first = int(bad[0])
        raise DataError(
            f"{path}: label {int(labels[first])} at index {first} is outside 0..{NUM_CLASSES - 1}"
            f" ({bad.size} bad labels in all)",
            broken_fix(path),
        )
    return labels


def parse_batch(path: Path, blob: bytes) -> Batch:
    """One batch file's images and labels, checked; a DataError names the file."""
    batch = str_keys(path, unpickle(path, blob))
    missing = [key for key in ("data", "labels") if key not in batch]
    if missing:
        raise DataError(f"{path} lacks the key(s) {', '.join(missing)}", broken_fix(path))
    data = _batch_data(path, batch)
    return Batch(data=data, labels=_batch_labels(path, batch, data.shape[0]))


def parse_label_names(path: Path, blob: bytes) -> tuple[str, ...]:
    names = str_keys(path, unpickle(path, blob)).get("label_names")
    if not isinstance(names, list | tuple) or len(names) != NUM_CLASSES:
        raise DataError(f"{path}: 'label_names' must list {NUM_CLASSES} names", broken_fix(path))
    if not all(isinstance(n, bytes | str) for n in names):
        raise DataError(f"{path}: 'label_names' must be strings", broken_fix(path))
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names)
