"""The test tiers, and the fixtures shared by the end-to-end tests: an isolated environment
one synthetic dataset, and one real smoke run (tests/e2e_run.py); and the two Pythons
an archive is unpacked on (``tar_python``).

Tiers: the default run is the fast tier (what ``bash scripts/test.sh`` runs in under ten
minutes on 2 cores). Tests marked ``slow``, ``realdata``, ``docker`` or ``ray`` run only
with ``--all-tiers`` (``bash scripts/test.sh --all``, which ``.ci/run`` passes); without
it each is listed as skipped with that reason. ``gpu`` tests skip themselves where no
GPU is seen.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness_contract.data.cifar import write_synthetic
from tests.e2e_run import E2ERun, run_smoke

SLOW_TIERS = ("slow", "realdata", "docker", "ray")
ALL_TIERS = "--all-tiers"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        ALL_TIERS,
        action="store_true",
        help="also run the slow tiers: " + ", ".join(SLOW_TIERS) + " (CI passes it)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption(ALL_TIERS):
        return
    for item in items:
        tiers = [t for t in SLOW_TIERS if item.get_closest_marker(t)]
        if tiers:
            reason = (
                f"{tiers[0]} tier: runs with bash scripts/test.sh --all "
                f"(pytest {ALL_TIERS}; CI passes it)"
            )
            item.add_marker(pytest.mark.skip(reason=reason))


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


@pytest.fixture(scope="session")
def e2e(synthetic_data: Path, tmp_path_factory: pytest.TempPathFactory) -> E2ERun:
    """`harness run pytorch --preset smoke` once per session, through the real entry point."""
    return run_smoke(synthetic_data, tmp_path_factory.mktemp("e2e-results"))


@pytest.fixture(params=["filters", "no filters"])
def tar_python(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """This Python, and one without tarfile's extraction filters (before 3.11.4: Debian
    bookworm's 3.11.2, the images' own, where a submitted sweep's driver runs)."""
    if request.param == "no filters":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return request.param
