"""The CIFAR-10 reader on batches re-saved by other tools, hostile pickles, empty batches,
and `harness data synth` refusing a folder that already holds a dataset."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.cli.main import main
from harness_contract.data.cifar import (
    BATCH_FILES_TRAIN,
    TEST_FILE,
    load_cifar10,
    write_synthetic,
)
from harness_contract.errors import DataError

ALL_BATCHES = (*BATCH_FILES_TRAIN, TEST_FILE)


def _synth(root: Path) -> Path:
    return write_synthetic(root, train_per_batch=10, test_count=10, seed=0)


def _text(value: object) -> object:
    return value.decode() if isinstance(value, bytes) else value


def _raw(value: object) -> object:
    return value.encode() if isinstance(value, str) else value


def _resave(path: Path, protocol: int, keys: str, labels: str) -> None:
    """Load a batch as another tool would, then save it again in its own way."""
    batch = pickle.loads(path.read_bytes(), encoding="bytes")
    if keys == "str":
        batch = {_text(k): _text(v) for k, v in batch.items()}
    else:  # the official files' style: bytes keys and bytes text
        batch = {_raw(k): _raw(v) for k, v in batch.items()}
    label_key = b"labels" if keys == "bytes" else "labels"
    if labels == "int64 array":
        batch[label_key] = np.asarray(batch[label_key], dtype=np.int64)
    elif labels == "int32 array":
        batch[label_key] = np.asarray(batch[label_key], dtype=np.int32)
    elif labels == "numpy scalars":
        batch[label_key] = [np.int64(v) for v in batch[label_key]]
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize(
    ("keys", "labels"),
    [("bytes", "list"), ("str", "list"), ("str", "int64 array"), ("bytes", "int32 array")],
)
def test_batches_resaved_with_any_pickle_protocol_load_the_same_images(
    tmp_path: Path, protocol: int, keys: str, labels: str
) -> None:
    batches = _synth(tmp_path)
    before = load_cifar10(batches)
    for name in ALL_BATCHES:
        _resave(batches / name, protocol, keys, labels)

    after = load_cifar10(batches)

    np.testing.assert_array_equal(after.train_images, before.train_images)
    np.testing.assert_array_equal(after.train_labels, before.train_labels)
    np.testing.assert_array_equal(after.test_images, before.test_images)
    np.testing.assert_array_equal(after.test_labels, before.test_labels)


@pytest.mark.parametrize("protocol", [2, 5])
def test_labels_saved_as_numpy_scalars_load(tmp_path: Path, protocol: int) -> None:
    batches = _synth(tmp_path)
    before = load_cifar10(batches)
    _resave(batches / "data_batch_3", protocol, "str", "numpy scalars")

    np.testing.assert_array_equal(load_cifar10(batches).train_labels, before.train_labels)


class _Calls:
    """Pickles as a call of ``func(*args)``: what a hostile batch file would carry."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return (self.func, self.args)


@pytest.mark.parametrize("protocol", [0, 2, 5])
@pytest.mark.parametrize(
    ("func", "named"),
    [
        (os.system, ".system"),
        (builtins.eval, ".eval"),  # protocols < 3 name it __builtin__.eval
        (subprocess.Popen, ".Popen"),
        (np.load, "numpy.load"),
    ],
)
def test_pickle_calling_anything_but_numpy_rebuilders_is_refused_naming_the_file(
    tmp_path: Path, protocol: int, func: object, named: str
) -> None:
    batches = _synth(tmp_path)
    sentinel = tmp_path / "pwned"
    payload = f"touch {sentinel}"
    if func is builtins.eval:
        payload = f"open({str(sentinel)!r}, 'w')"
    elif func is subprocess.Popen:
        payload = ["touch", str(sentinel)]
    elif func is np.load:
        payload = str(sentinel)
    hostile = {"labels": [0], "data": _Calls(func, payload)}
    (batches / "data_batch_2").write_bytes(pickle.dumps(hostile, protocol=protocol))

    with pytest.raises(DataError) as excinfo:
        load_cifar10(batches)

    problem = excinfo.value.problem
    assert str(batches / "data_batch_2") in problem
    assert named in problem and "refusing" in problem
    assert not sentinel.exists()


@pytest.mark.parametrize("name", ["data_batch_2", "test_batch"])
def test_batch_with_no_rows_is_named_as_empty(tmp_path: Path, name: str) -> None:
    batches = _synth(tmp_path)
    empty = {b"labels": [], b"data": np.zeros((0, 3072), dtype=np.uint8)}
    (batches / name).write_bytes(pickle.dumps(empty, protocol=2))

    with pytest.raises(DataError) as excinfo:
        load_cifar10(batches)

    assert f"{batches / name} has no images" in excinfo.value.problem


# ---------------------------------------------------------------- data synth refuses datasets


def test_write_synthetic_refuses_a_folder_holding_synthetic_data(tmp_path: Path) -> None:
    batches = _synth(tmp_path)
    before = {p.name: p.read_bytes() for p in batches.iterdir()}

    with pytest.raises(DataError) as excinfo:
        write_synthetic(tmp_path, train_per_batch=10, test_count=10, seed=1)

    assert f"{batches} already holds a synthetic CIFAR-10 dataset" in excinfo.value.problem
    assert {p.name: p.read_bytes() for p in batches.iterdir()} == before


def test_write_synthetic_refuses_a_folder_that_is_itself_a_batches_folder(tmp_path: Path) -> None:
    batches = _synth(tmp_path)

    with pytest.raises(DataError) as excinfo:
        write_synthetic(batches, train_per_batch=10, test_count=10)

    assert f"{batches} already holds a synthetic CIFAR-10 dataset" in excinfo.value.problem
    assert not (batches / "cifar-10-batches-py").exists()


def test_write_synthetic_refuses_a_partial_dataset(tmp_path: Path) -> None:
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    (batches / "test_batch").write_bytes(b"left over")

    with pytest.raises(DataError) as excinfo:
        write_synthetic(tmp_path, train_per_batch=10, test_count=10)

    assert f"{batches} already holds" in excinfo.value.problem
    assert (batches / "test_batch").read_bytes() == b"left over"


def test_write_synthetic_accepts_an_existing_folder_without_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "cifar-10-batches-py").mkdir()  # empty: nothing to lose

    batches = _synth(tmp_path)

    assert load_cifar10(batches).train_images.shape == (50, 32, 32, 3)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_data_synth_into_a_dataset_folder_fails_with_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["data", "synth", str(tmp_path), "--train-per-batch", "10", "--test", "10"]
    assert main(args) == 0
    capsys.readouterr()

    code = main(args)

    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code != 0 and len(lines) == 1, err
    assert str(tmp_path / "cifar-10-batches-py") in lines[0] and "already holds" in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "hostile",
    [
        # bytes(1410065408): 1.4 GB of zeros from a 30-byte file
        pytest.param(b"\x80\x02c__builtin__\nbytes\nJ\x00\xe4\x0bT\x85R.", id="bytes-of-a-size"),
        # _codecs.encode("a", "rot13"): any codec but latin1
        pytest.param(
            b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.",
            id="other-codec",
        ),
    ],
)
def test_allowed_helpers_refuse_arguments_a_batch_never_uses(
    tmp_path: Path, hostile: bytes
) -> None:
    batches = _synth(tmp_path)
    (batches / "data_batch_1").write_bytes(hostile)

    with pytest.raises(DataError) as excinfo:
        load_cifar10(batches)

    assert f"{batches / 'data_batch_1'} is not a valid CIFAR-10 pickle" in excinfo.value.problem
