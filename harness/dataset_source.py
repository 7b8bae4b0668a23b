"""Which CIFAR-10 directory a run uses: the one given, one found, or a synthetic one."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from harness_contract.cifar import resolve_root, write_synthetic
from harness_contract.errors import DataError
from harness_contract.spec import ExperimentSpec

# Looked for when --data is not given: ./data or ./data/cifar-10-batches-py.
DEFAULT_LOCATION = Path("data")
FULL_TRAIN, FULL_TEST = 50_000, 10_000


@dataclass(frozen=True)
class DataChoice:
    path: Path
    origin: str  # "given", "found" or "synthetic": said to the user before the run


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "quant-compare-harness"


def choose_data(given: Path | None, spec: ExperimentSpec) -> DataChoice:
    if given is not None:
        return DataChoice(resolve_root(given), "given")
    env = os.environ.get("HARNESS_DATA")
    if env:
        return DataChoice(resolve_root(Path(env)), "found ($HARNESS_DATA)")
    try:
        return DataChoice(resolve_root(DEFAULT_LOCATION), f"found (./{DEFAULT_LOCATION})")
    except DataError:
        pass
    return DataChoice(synthetic_for(spec), "synthetic")


def synthetic_for(spec: ExperimentSpec) -> Path:
    """A synthetic dataset just large enough for the spec's limits, cached between runs."""
    train = spec.data.train_limit or FULL_TRAIN
    test = spec.data.test_limit or FULL_TEST
    per_batch = math.ceil(train / 5)
    root = _cache_root() / f"synthetic-cifar10-{per_batch * 5}x{test}-seed{spec.seed}"
    try:
        return resolve_root(root)
    except DataError:
        return write_synthetic(root, train_per_batch=per_batch, test_count=test, seed=spec.seed)
