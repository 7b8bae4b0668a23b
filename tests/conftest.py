"""Fixtures shared by the end-to-end tests: an isolated environment and one synthetic dataset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness_contract.cifar import write_synthetic


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the harness's synthetic-data cache out of ~/.cache and ignore the user's dataset."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        mp.delenv("HARNESS_DATA", raising=False)
        yield


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke preset's size (2,000 train / 500 test), learnable, in the official layout."""
    root = tmp_path_factory.mktemp("synthetic-cifar10")
    return write_synthetic(root, train_per_batch=400, test_count=500, seed=0)
