"""`harness doctor` on data: a dataset that would fail a run fails the check (naming the
file), and the synthetic-data cache is checked for a writable folder and room."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import doctor
from harness_contract.data.cifar import write_synthetic
from harness_contract.fs import room


@pytest.fixture(autouse=True)
def _no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)


def _check(name: str) -> doctor.Check:
    return next(check for check in doctor.checks() if check.name == name)


def test_doctor_fails_a_dataset_with_a_truncated_batch_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    batches = write_synthetic(tmp_path / "cifar", train_per_batch=10, test_count=10)
    broken = batches / "data_batch_4"
    broken.write_bytes(broken.read_bytes()[:100])
    monkeypatch.setenv("HARNESS_DATA", str(batches))

    dataset = _check("dataset")

    assert dataset.ok is False and str(broken) in dataset.detail and dataset.fix


def test_doctor_reports_the_valid_dataset_it_found_in_dot_data(tmp_path: Path) -> None:
    batches = write_synthetic(tmp_path / "data", train_per_batch=10, test_count=10)

    dataset = _check("dataset")

    assert dataset.ok is True and dataset.detail == str(Path("data") / batches.name)


def test_doctor_shows_where_synthetic_data_is_cached_and_the_room_there(tmp_path: Path) -> None:
    cache = _check("data cache")

    assert cache.ok is True
    assert (
        str(tmp_path / "xdg" / "quant-compare-harness") in cache.detail and "free" in cache.detail
    )


def test_doctor_warns_when_the_cache_disk_cannot_hold_full_synthetic_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(room, "free_disk", lambda path: 50_000_000)

    cache = _check("data cache")

    assert cache.ok is None and "50.0 MB free" in cache.detail
    assert "XDG_CACHE_HOME" in cache.fix


def test_doctor_fails_an_unwritable_cache_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode)
    )

    cache = _check("data cache")

    assert cache.ok is False and "not writable" in cache.detail
    assert "XDG_CACHE_HOME" in cache.fix
