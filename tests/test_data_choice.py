"""choose_data checks the dataset a run will use before the run directory exists: broken
or empty batch files, limits beyond the data, and counts the study would draw from too
few training images are all refused up front, naming the file or the numbers."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from harness.cli.main import main
from harness.data.source import choose_data
from harness_contract.data.cifar import load_cifar10, write_synthetic
from harness_contract.errors import HarnessError
from harness_contract.spec import build_spec

# 100 training and 20 test images; the spec below asks for no more than that.
FITS = [
    "data.train_limit=null",
    "data.test_limit=null",
    "ptq.calibration_samples=50",
    "train.batch_size=32",
    "qat.batch_size=32",
]


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    return write_synthetic(tmp_path / "data", train_per_batch=20, test_count=20, seed=0)


def _refused(given: Path | None, *overrides: str) -> str:
    with pytest.raises(HarnessError) as excinfo:
        choose_data(given, build_spec("smoke", None, [*FITS, *overrides]))
    line = excinfo.value.one_line()
    assert "\n" not in line
    return line


def test_a_dataset_that_fits_is_chosen_with_its_counts_and_digest(data: Path) -> None:
    choice = choose_data(data.parent, build_spec("smoke", None, FITS))

    assert choice.path == data and choice.origin == "given"
    assert choice.summary is not None
    assert (choice.summary.train_images, choice.summary.test_images) == (100, 20)
    assert choice.summary.kind == "synthetic"
    assert choice.summary.digest == load_cifar10(data).digest


def test_truncated_batch_is_found_before_the_run_naming_the_file(data: Path) -> None:
    broken = data / "data_batch_3"
    broken.write_bytes(broken.read_bytes()[:4000])

    line = _refused(data)

    assert str(broken) in line and "truncated" in line


def test_missing_batch_is_found_before_the_run_naming_the_file(data: Path) -> None:
    (data / "test_batch").unlink()

    assert f"{data / 'test_batch'} is missing" in _refused(data)


def test_batch_with_no_images_is_found_before_the_run(data: Path) -> None:
    empty = {b"data": np.zeros((0, 3072), dtype=np.uint8), b"labels": []}
    (data / "data_batch_5").write_bytes(pickle.dumps(empty, protocol=2))

    assert f"{data / 'data_batch_5'} has no images" in _refused(data)


def test_rows_of_the_wrong_shape_are_found_before_the_run(data: Path) -> None:
    wrong = {b"data": np.zeros((20, 1024), dtype=np.uint8), b"labels": [0] * 20}
    (data / "data_batch_1").write_bytes(pickle.dumps(wrong, protocol=2))

    line = _refused(data)
    assert str(data / "data_batch_1") in line and "shape" in line


def test_train_limit_beyond_the_data_is_refused_before_the_run(data: Path) -> None:
    line = _refused(data, "data.train_limit=500", "data.test_limit=10")
    assert "data.train_limit=500" in line and "(100)" in line


def test_test_limit_beyond_the_data_is_refused_before_the_run(data: Path) -> None:
    line = _refused(data, "data.test_limit=21")
    assert "data.test_limit=21" in line and "(20)" in line


def test_calibration_beyond_the_training_images_is_refused_before_training(data: Path) -> None:
    line = _refused(data, "ptq.calibration_samples=101")
    assert "ptq.calibration_samples=101" in line
    assert f"100 training images in {data}" in line
    assert "--data" in line


@pytest.mark.parametrize("key", ["train.batch_size", "qat.batch_size"])
def test_training_batch_larger_than_the_training_images_is_refused(data: Path, key: str) -> None:
    line = _refused(data, f"{key}=128")
    assert f"{key}=128" in line and "100 training images" in line


def test_harness_data_pointing_at_broken_data_is_refused_naming_the_file(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (data / "data_batch_2").write_bytes(b"not a pickle")
    monkeypatch.setenv("HARNESS_DATA", str(data))

    assert str(data / "data_batch_2") in _refused(None)


def test_broken_dataset_in_dot_data_is_refused_not_replaced_by_synthetic(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(data.parent.parent)  # ./data is the dataset
    (data / "data_batch_2").write_bytes(b"not a pickle")

    assert "data_batch_2" in _refused(None)


def test_run_on_broken_data_leaves_no_run_directory(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = {b"data": np.zeros((0, 3072), dtype=np.uint8), b"labels": []}
    (data / "data_batch_5").write_bytes(pickle.dumps(empty, protocol=2))
    results = tmp_path / "results"
    sets = [arg for o in FITS for arg in ("--set", o)]

    code = main(["run", "pytorch", "--data", str(data), "--results", str(results), *sets])

    err = capsys.readouterr().err
    assert code == 2, err
    assert "data_batch_5 has no images" in err
    assert not results.exists() or not any(results.iterdir())


def test_run_asking_for_more_calibration_images_than_the_data_leaves_no_run_directory(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    sets = [arg for o in [*FITS, "ptq.calibration_samples=500"] for arg in ("--set", o)]

    code = main(["run", "pytorch", "--data", str(data), "--results", str(results), *sets])

    err = capsys.readouterr().err
    assert code == 2, err
    assert "ptq.calibration_samples=500" in err
    assert not results.exists() or not any(results.iterdir())
