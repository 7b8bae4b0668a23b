"""Which CIFAR-10 directory a run uses: the one given, one found, or a synthetic one.

``choose_data`` also checks the chosen dataset before anything else happens (every
batch file parsed, the spec's limits and counts against its images), so a data error
is reported before a run directory exists.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness_contract.data.cifar import (
    BATCHES_DIR,
    DatasetSummary,
    check_dataset,
    resolve_root,
    write_synthetic,
)
from harness_contract.errors import DataError
from harness_contract.fs.oserrors import os_error
from harness_contract.spec import ExperimentSpec, check_training_images

# Looked for when --data is not given: ./data or ./data/cifar-10-batches-py.
DEFAULT_LOCATION = Path("data")
DATA_ENV = "HARNESS_DATA"
FULL_TRAIN, FULL_TEST = 50_000, 10_000
CACHE_ELSEWHERE = "set XDG_CACHE_HOME to a writable folder with free space, or pass --data DIR"
CACHE_SMALLER = "lower data.train_limit / data.test_limit"


@dataclass(frozen=True)
class DataChoice:
    path: Path
    origin: str  # "given", "found" or "synthetic": said to the user before the run
    # What the check found (counts, digest); None only where a caller built the choice.
    summary: DatasetSummary | None = None


def cache_root() -> Path:
    """Where synthetic datasets are cached: $XDG_CACHE_HOME (or ~/.cache)/quant-compare-harness."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "quant-compare-harness"


def choose_data(given: Path | None, spec: ExperimentSpec) -> DataChoice:
    """The dataset for ``spec``, checked: a DataError or SpecError names what is wrong."""
    path, origin = _locate(given, spec)
    summary = check_dataset(path, spec.data.train_limit, spec.data.test_limit)
    training = min(spec.data.train_limit or summary.train_images, summary.train_images)
    check_training_images(
        spec, training, f"in {summary.root}", "or point --data at a larger dataset"
    )
    return DataChoice(summary.root, origin, summary)


def locate(given: Path | None) -> tuple[Path, str] | None:
    """The look-up order, written only here: ``--data``, then ``$HARNESS_DATA``, then
    ``./data`` when it holds a dataset (one holding none is ignored); the folder and how it
    was found, or None: runs use synthetic images. A given or $HARNESS_DATA folder that
    holds no dataset raises DataError."""
    if given is not None:
        return resolve_root(given), "given"
    env = os.environ.get(DATA_ENV)
    if env:
        return resolve_root(Path(env)), f"found (${DATA_ENV})"
    try:
        return resolve_root(DEFAULT_LOCATION), f"found (./{DEFAULT_LOCATION})"
    except DataError:
        return None


def _locate(given: Path | None, spec: ExperimentSpec) -> tuple[Path, str]:
    return locate(given) or (synthetic_for(spec), "synthetic")


def synthetic_for(spec: ExperimentSpec) -> Path:
    """A synthetic dataset just large enough for the spec's limits, cached between runs.

    The cache is written whole or not at all; one that fails the check (left by an
    older harness, or damaged since) is replaced.
    """
    train = spec.data.train_limit or FULL_TRAIN
    test = spec.data.test_limit or FULL_TEST
    per_batch = math.ceil(train / 5)
    root = cache_root() / f"synthetic-cifar10-{per_batch * 5}x{test}-seed{spec.seed}"
    batches = root / BATCHES_DIR
    if batches.exists():
        try:
            return check_dataset(batches).root
        except DataError:
            _discard(batches)
    return write_synthetic(
        root,
        train_per_batch=per_batch,
        test_count=test,
        seed=spec.seed,
        smaller=CACHE_SMALLER,
        elsewhere=CACHE_ELSEWHERE,
    )


def _discard(folder: Path) -> None:
    """Move a broken cache aside in one step, then delete it."""
    try:
        aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.broken-", dir=folder.parent))
        with contextlib.suppress(FileNotFoundError):  # another run discarded it first
            folder.rename(aside / folder.name)
    except OSError as exc:
        raise os_error(exc, folder.parent, CACHE_ELSEWHERE, writing=True, error=DataError) from None
    shutil.rmtree(aside, ignore_errors=True)
