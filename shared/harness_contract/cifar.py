"""The CIFAR-10 reader (official python format) and a writer of synthetic data in that format.

Both runners read the dataset through ``load_cifar10`` so they see the same uint8 images
in the same order. Batch files are pickles, which can run code when loaded; the reader
uses a restricted unpickler that only rebuilds numpy arrays, so a hostile file is refused.
Only the standard library and numpy are imported: the host and every runner can use it.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .atomic import write_bytes_atomic, write_text_atomic
from .errors import DataError

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


def _broken_fix(file: Path) -> str:
    """How to replace a damaged file: regenerate synthetic data, fetch real data again."""
    root = file.parent
    top = root.parent if root.name == BATCHES_DIR else root
    if (root / SYNTHETIC_MARKER).exists():
        return f"regenerate it with `harness data synth {top}`"
    return f"fetch it again with `harness data fetch {top}`"


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


def _kind(root: Path) -> Literal["real", "synthetic"]:
    return "synthetic" if (root / SYNTHETIC_MARKER).exists() else "real"


# ---------------------------------------------------------------------------------------
# Safe unpickling


def _numpy_global(name: str) -> Any:
    # numpy 2 moved numpy.core to numpy._core; resolve here instead of importing
    # numpy.core, which warns on numpy 2.
    core = getattr(np, "_core", None) or np.core
    return getattr(core.multiarray, name)


def _allowed_globals() -> dict[tuple[str, str], Callable[[], Any]]:
    import _codecs

    allowed: dict[tuple[str, str], Callable[[], Any]] = {
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        # Protocol-2 pickles written by Python 3 encode bytes as _codecs.encode(str, "latin1").
        ("_codecs", "encode"): lambda: _codecs.encode,
        ("codecs", "encode"): lambda: _codecs.encode,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        for name in ("_reconstruct", "scalar"):
            allowed[(module, name)] = lambda name=name: _numpy_global(name)
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


def _unpickle(path: Path, blob: bytes) -> Any:
    stream = io.BytesIO(blob)
    try:
        obj = _RestrictedUnpickler(stream, encoding="bytes").load()
    except _ForbiddenGlobalError as exc:
        raise DataError(
            f"{path} refers to {exc}, which a CIFAR-10 batch never needs; refusing to load it",
            "use only files from the official archive or `harness data synth`",
        ) from None
    except EOFError:
        raise DataError(f"{path} is truncated", _broken_fix(path)) from None
    except Exception as exc:  # any parse failure of a damaged file lands here
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason:
            raise DataError(f"{path} is truncated ({reason})", _broken_fix(path)) from None
        raise DataError(
            f"{path} is not a valid CIFAR-10 pickle ({reason})", _broken_fix(path)
        ) from None
    if stream.tell() != len(blob):
        extra = len(blob) - stream.tell()
        raise DataError(f"{path} has {extra} unexpected bytes after the pickle", _broken_fix(path))
    return obj


def _str_keys(path: Path, obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise DataError(
            f"{path} holds a {type(obj).__name__}, not a CIFAR-10 batch dict", _broken_fix(path)
        )
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


# ---------------------------------------------------------------------------------------
# Reading and validating one batch


@dataclass(frozen=True)
class _Batch:
    data: np.ndarray  # (N, 3072) uint8, CHW rows
    labels: np.ndarray  # (N,) int64


def _batch_data(path: Path, batch: dict[str, Any]) -> np.ndarray:
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        dtype = getattr(data, "dtype", type(data).__name__)
        raise DataError(f"{path}: 'data' must be a uint8 array, got {dtype}", _broken_fix(path))
    if data.ndim != 2 or data.shape[1] != ROW_BYTES:
        raise DataError(
            f"{path}: 'data' must have shape (N, {ROW_BYTES}), got {data.shape}", _broken_fix(path)
        )
    return data


def _batch_labels(path: Path, batch: dict[str, Any], rows: int) -> np.ndarray:
    raw = batch["labels"]
    labels = np.asarray(raw) if isinstance(raw, list | tuple | np.ndarray) else None
    if labels is None or labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise DataError(f"{path}: 'labels' must be a list of integers", _broken_fix(path))
    if labels.size != rows:
        raise DataError(
            f"{path} has {labels.size} labels but {rows} images; they must match", _broken_fix(path)
        )
    labels = labels.astype(np.int64, copy=False)
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if bad.size:
        first = int(bad[0])
        raise DataError(
            f"{path}: label {int(labels[first])} at index {first} is outside 0..{NUM_CLASSES - 1}"
            f" ({bad.size} bad labels in all)",
            _broken_fix(path),
        )
    return labels


def _parse_batch(path: Path, blob: bytes) -> _Batch:
    batch = _str_keys(path, _unpickle(path, blob))
    missing = [key for key in ("data", "labels") if key not in batch]
    if missing:
        raise DataError(f"{path} lacks the key(s) {', '.join(missing)}", _broken_fix(path))
    data = _batch_data(path, batch)
    return _Batch(data=data, labels=_batch_labels(path, batch, data.shape[0]))


def _read_file(root: Path, name: str, digest: Any) -> bytes:
    path = root / name
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"CIFAR-10 file {path} is missing", _broken_fix(path)) from None
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc})", _broken_fix(path)) from None
    digest.update(name.encode() + b"\0" + len(blob).to_bytes(8, "little"))
    digest.update(blob)
    return blob


def _read_split(root: Path, names: tuple[str, ...], digest: Any) -> list[_Batch]:
    return [_parse_batch(root / name, _read_file(root, name, digest)) for name in names]


def _label_names(root: Path) -> tuple[str, ...]:
    path = root / META_FILE
    if not path.exists():
        return DEFAULT_LABEL_NAMES
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc})", _broken_fix(path)) from None
    names = _str_keys(path, _unpickle(path, blob)).get("label_names")
    if not isinstance(names, list | tuple) or len(names) != NUM_CLASSES:
        raise DataError(f"{path}: 'label_names' must list {NUM_CLASSES} names", _broken_fix(path))
    if not all(isinstance(n, bytes | str) for n in names):
        raise DataError(f"{path}: 'label_names' must be strings", _broken_fix(path))
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names)


# ---------------------------------------------------------------------------------------
# Public reader


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


def _to_nhwc(batches: list[_Batch], count: int) -> tuple[np.ndarray, np.ndarray]:
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
        kind=_kind(root),
        digest=digest.hexdigest(),
    )


# ---------------------------------------------------------------------------------------
# Checksums and verify


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
        raise DataError(f"cannot read {sums} ({exc})", _broken_fix(root / SUMS_FILE)) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        hexdigest, name = (parts[0].lower(), parts[1].lstrip("*")) if len(parts) == 2 else ("", "")
        if len(hexdigest) != 64 or not name or ".." in Path(name).parts or Path(name).is_absolute():
            raise DataError(
                f"{sums} line {number} is not '<sha256>  <file>'", _broken_fix(root / SUMS_FILE)
            )
        yield hexdigest, name


def _check_sums(root: Path, sums: Path) -> None:
    for expected, name in _parse_sums(root, sums):
        # Names are relative to the SHA256SUMS folder, or to the batches folder.
        target = next((p for p in (sums.parent / name, root / name) if p.is_file()), None)
        if target is None:
            raise DataError(f"{sums} lists {name}, which is missing", _broken_fix(root / name))
        actual = _sha256_file(target)
        if actual != expected:
            raise DataError(
                f"{target} does not match its checksum in {sums} "
                f"(expected sha256 {expected}, got {actual})",
                _broken_fix(root / name),
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


# ---------------------------------------------------------------------------------------
# Synthetic data


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


def _check_synth_target(root: Path) -> None:
    # Never overwrite a real dataset with synthetic images.
    holds_batches = any((root / n).exists() for n in (*BATCH_FILES_TRAIN, TEST_FILE))
    if holds_batches and _kind(root) == "real":
        raise DataError(
            f"{root} already holds a real CIFAR-10 dataset; refusing to overwrite it",
            "choose another directory for synthetic data",
        )


def _synth_files(train_per_batch: int, test_count: int, seed: int) -> Iterator[tuple[str, bytes]]:
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


def write_synthetic(
    root: Path, train_per_batch: int = 1000, test_count: int = 1000, seed: int = 0
) -> Path:
    """Write a learnable synthetic dataset in the official format; return its batches dir."""
    for key, value in (("train_per_batch", train_per_batch), ("test_count", test_count)):
        if value < 1:
            raise DataError(f"{key} must be >= 1, got {value}", f"pass a positive {key}")
    batches = Path(root) / BATCHES_DIR
    _check_synth_target(batches)
    digests: dict[str, str] = {}
    try:
        # The marker goes first so a half-written folder is never mistaken for real data.
        marker = (
            "Synthetic CIFAR-10-format data, not real images: written by "
            f"harness_contract.cifar.write_synthetic(train_per_batch={train_per_batch}, "
            f"test_count={test_count}, seed={seed}).\n"
        ).encode()
        files = itertools.chain(
            [(SYNTHETIC_MARKER, marker)], _synth_files(train_per_batch, test_count, seed)
        )
        for name, blob in files:
            write_bytes_atomic(batches / name, blob)
            digests[name] = hashlib.sha256(blob).hexdigest()
        sums = "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))
        write_text_atomic(batches / SUMS_FILE, sums)
    except OSError as exc:
        raise DataError(
            f"cannot write synthetic CIFAR-10 to {batches} ({exc.strerror or exc})",
            "choose a writable directory",
        ) from None
    return batches
