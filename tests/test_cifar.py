"""The CIFAR-10 reader and synthetic writer (harness_contract.data.cifar)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from harness_contract.data.cifar import (
    BATCH_FILES_TRAIN,
    META_FILE,
    TEST_FILE,
    load_cifar10,
    resolve_root,
    verify,
    write_synthetic,
)
from harness_contract.errors import DataError

REAL_SUBSET = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-subset"
ALL_BATCHES = (*BATCH_FILES_TRAIN, TEST_FILE)


def _synth(tmp_path: Path, per_batch: int = 20, test: int = 10, seed: int = 0) -> Path:
    return write_synthetic(tmp_path, train_per_batch=per_batch, test_count=test, seed=seed)


def _batch_dict(data: object, labels: object, keys: str = "bytes") -> dict:
    batch = {"batch_label": "a batch", "labels": labels, "data": data}
    if keys == "bytes":
        return {k.encode(): v.encode() if isinstance(v, str) else v for k, v in batch.items()}
    return batch


def _write_batch(path: Path, data: object, labels: object, keys: str = "bytes") -> None:
    path.write_bytes(pickle.dumps(_batch_dict(data, labels, keys), protocol=2))


def _rows(n: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return data, [int(v) for v in rng.integers(0, 10, size=n)]


def _write_official(root: Path, per_batch: int = 4, keys: str = "bytes") -> Path:
    """A hand-made dataset in the official layout (no SYNTHETIC marker: kind 'real')."""
    batches = root / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for i, name in enumerate(ALL_BATCHES):
        data, labels = _rows(per_batch, seed=i)
        _write_batch(batches / name, data, labels, keys)
    return batches


def _problem(excinfo: pytest.ExceptionInfo[DataError]) -> str:
    return excinfo.value.problem


# --- round trip and layout -------------------------------------------------------------


def test_synthetic_dataset_loads_with_documented_shapes_dtypes_and_kind(tmp_path: Path) -> None:
    batches = _synth(tmp_path, per_batch=20, test=30)
    data = load_cifar10(tmp_path)

    assert data.train_images.shape == (100, 32, 32, 3)
    assert data.train_images.dtype == np.uint8
    assert data.train_images.flags.c_contiguous
    assert data.train_labels.shape == (100,)
    assert data.train_labels.dtype == np.int64
    assert data.test_images.shape == (30, 32, 32, 3)
    assert data.test_images.flags.c_contiguous
    assert data.test_labels.dtype == np.int64
    assert data.label_names[0] == "airplane" and data.label_names[9] == "truck"
    assert data.root == batches
    assert data.kind == "synthetic"
    assert len(data.digest) == 64 and int(data.digest, 16) >= 0


def test_pixels_land_in_nhwc_order_from_red_green_blue_planes(tmp_path: Path) -> None:
    batches = _write_official(tmp_path)
    image = np.random.default_rng(7).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    row = np.concatenate([image[:, :, c].reshape(-1) for c in range(3)])  # R, G, B planes
    data, labels = _rows(4)
    data[2] = row
    _write_batch(batches / "data_batch_1", data, labels)

    loaded = load_cifar10(batches)

    np.testing.assert_array_equal(loaded.train_images[2], image)
    # Spot checks straight from the file format: plane * 1024 + y * 32 + x.
    assert loaded.train_images[2, 5, 7, 1] == row[1024 + 5 * 32 + 7]
    assert loaded.train_images[2, 31, 0, 2] == row[2048 + 31 * 32 + 0]
    assert loaded.train_images[2, 0, 31, 0] == row[31]


@pytest.mark.parametrize("keys", ["bytes", "str"])
def test_bytes_keyed_and_str_keyed_batches_both_load(tmp_path: Path, keys: str) -> None:
    _write_official(tmp_path, per_batch=4, keys=keys)

    loaded = load_cifar10(tmp_path)

    expected, labels = _rows(4, seed=0)
    assert loaded.train_images.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(
        loaded.train_images[:4], expected.reshape(4, 3, 32, 32).transpose(0, 2, 3, 1)
    )
    assert loaded.train_labels[:4].tolist() == labels
    assert loaded.kind == "real"


def test_missing_batches_meta_falls_back_to_standard_label_names(tmp_path: Path) -> None:
    batches = _write_official(tmp_path)
    assert not (batches / META_FILE).exists()

    names = load_cifar10(batches).label_names

    assert names == (
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


def test_label_names_are_read_from_bytes_keyed_batches_meta(tmp_path: Path) -> None:
    batches = _write_official(tmp_path)
    names = [f"class{i}".encode() for i in range(10)]
    (batches / META_FILE).write_bytes(pickle.dumps({b"label_names": names}, protocol=2))

    assert load_cifar10(batches).label_names == tuple(f"class{i}" for i in range(10))


def test_kind_is_real_when_the_synthetic_marker_is_absent(tmp_path: Path) -> None:
    batches = _synth(tmp_path)
    (batches / "SYNTHETIC").unlink()

    assert load_cifar10(batches).kind == "real"


# --- limits ----------------------------------------------------------------------------


def test_limits_take_the_first_images_in_file_order(tmp_path: Path) -> None:
    _synth(tmp_path, per_batch=20, test=10)
    full = load_cifar10(tmp_path)

    part = load_cifar10(tmp_path, train_limit=25, test_limit=7)

    assert part.train_images.shape == (25, 32, 32, 3)
    assert part.train_images.flags.c_contiguous
    np.testing.assert_array_equal(part.train_images, full.train_images[:25])
    np.testing.assert_array_equal(part.train_labels, full.train_labels[:25])
    np.testing.assert_array_equal(part.test_images, full.test_images[:7])
    np.testing.assert_array_equal(part.test_labels, full.test_labels[:7])
    assert part.digest == full.digest


def test_train_limit_beyond_the_dataset_is_rejected_naming_both_numbers(tmp_path: Path) -> None:
    _synth(tmp_path, per_batch=20, test=10)

    with pytest.raises(DataError) as excinfo:
        load_cifar10(tmp_path, train_limit=101)

    assert "data.train_limit=101" in _problem(excinfo)
    assert "(100)" in _problem(excinfo)
    assert "lower data.train_limit to at most 100" in excinfo.value.fix


def test_test_limit_beyond_the_dataset_is_rejected_naming_both_numbers(tmp_path: Path) -> None:
    _synth(tmp_path, per_batch=20, test=10)

    with pytest.raises(DataError) as excinfo:
        load_cifar10(tmp_path, test_limit=11)

    assert "data.test_limit=11" in _problem(excinfo)
    assert "(10)" in _problem(excinfo)
    assert "data.test_limit" in excinfo.value.fix


# --- damaged and hostile files -----------------------------------------------------------


def test_truncated_batch_file_is_rejected_with_its_name(tmp_path: Path) -> None:
    batches = _synth(tmp_path)
    path = batches / "data_batch_3"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    with pytest.raises(DataError) as excinfo:
        load_cifar10(tmp_path)

    assert "data_batch_3" in _problem(excinfo)
    assert "truncated" in _problem(excinfo)
    assert excinfo.value.fix == (  # the same sizes and seed, replacing the damaged copy
        f"regenerate it with `harness data synth {tmp_path} --train-per-batch 20 --test 10 "
        "--seed 0 --force`"
    )


def test_file_of_random_bytes_is_rejected_with_its_name(tmp_path: Path) -> None:
    batches = _synth(tmp_path)
    (batches / TEST_FILE).write_bytes(np.random.default_rng(1).bytes(5000))

    with pytest.raises(DataError) as excinfo:
        load_cifar10(tmp_path)

    assert str(batches / TEST_FILE) in _problem(excinfo)


def test_text_file_in_place_of_a_batch_is_rejected_as_not_a_pickle(tmp_path: Path) -> None:
    batches = _synth(tmp_path)
    (batches / "data_batch_2").write_text("this is not a pickle\n" * 50)

    with pytest.raises(DataError) as excinfo:
        load_cifar10(tmp_path)

    assert "data_batch_2 is not a valid CIFAR-10 pickle" in _problem(excinfo)


def test_bytes_after_the_pickle_are_rejected(tmp_path: Path) -> None:
    batches = _synth(tmp_path)
    path = batches / "data_batch_4"
    path.write_bytes(path.read_bytes() + b"junk")

    with pytest.raises(DataError) as excinfo:
        load_cifar10(tmp_path)

    assert "data_batch_4 has 4 unexpected bytes" in _problem(excinfo)


class _RunsCode:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return (os.system, (self.command,))


def test_pickle_that_would_run_code_is_refused_without_running_it(tmp_path: Path) -> None:
    batches = _synth(tmp_path)
    sentinel = tmp_path / "pwned"
    hostile = {"labels": [0], "data": _RunsCode(f"touch {sentinel}")}
    (batches / "data_batch_1").write_bytes(pickle.dumps(hostile, protocol=2))

    with pytest.raises(DataError) as excinfo:
        load_cifar10(tmp_path)

    assert "data_batch_1" in _problem(excinfo)
    assert "system" in _problem(excinfo)
    assert "refusing" in _problem(excinfo)
    assert not sentinel.exists()


@pytest.mark.parametrize(("bad_label", "index"), [(10, 3), (-1, 0)])
def test_label_outside_zero_to_nine_is_rejected_with_value_and_index(
    tmp_path: Path, bad_label: int, index: int
) -> None:
    batches = _write_official(tmp_path, per_batch=5)
    data, labels = _rows(5)
    labels[index] = bad_label
    _write_batch(batches / "data_batch_2", data, labels)

    with pytest.raises(DataError) as excinfo:
        load_cifar10(batches)

    assert "data_batch_2" in _problem(excinfo)
    assert f"label {bad_label} at index {index}" in _problem(excinfo)
    assert excinfo.value.fix == f"fetch it again with `harness data fetch {tmp_path}`"


def test_label_count_that_differs_from_image_count_is_rejected(tmp_path: Path) -> None:
    batches = _write_official(tmp_path, per_batch=5)
    data, labels = _rows(5)
    _write_batch(batches / TEST_FILE, data, labels[:4])

    with pytest.raises(DataError) as excinfo:
        load_cifar10(batches)

    assert "test_batch has 4 labels but 5 images" in _problem(excinfo)


def test_data_that_is_not_uint8_is_rejected(tmp_path: Path) -> None:
    batches = _write_official(tmp_path, per_batch=5)
    data, labels = _rows(5)
    _write_batch(batches / "data_batch_5", data.astype(np.float32), labels)

    with pytest.raises(DataError) as excinfo:
        load_cifar10(batches)

    assert "data_batch_5" in _problem(excinfo)
    assert "uint8" in _problem(excinfo) and "float32" in _problem(excinfo)


def test_data_rows_of_the_wrong_length_are_rejected(tmp_path: Path) -> None:
    batches = _write_official(tmp_path, per_batch=5)
    data, labels = _rows(5)
    _write_batch(batches / "data_batch_1", data[:, :3000].copy(), labels)

    with pytest.raises(DataError) as excinfo:
        load_cifar10(batches)

    assert "data_batch_1" in _problem(excinfo)
    assert "(5, 3000)" in _problem(excinfo)


def test_batch_without_labels_key_is_rejected(tmp_path: Path) -> None:
    batches = _write_official(tmp_path, per_batch=5)
    data, _ = _rows(5)
    (batches / "data_batch_3").write_bytes(pickle.dumps({b"data": data}, protocol=2))

    with pytest.raises(DataError) as excinfo:
        load_cifar10(batches)

    assert "data_batch_3 lacks the key(s) labels" in _problem(excinfo)


def test_missing_batch_file_is_rejected_with_its_name(tmp_path: Path) -> None:
    batches = _synth(tmp_path)
    (batches / "data_batch_5").unlink()

    with pytest.raises(DataError) as excinfo:
        load_cifar10(tmp_path)

    assert f"{batches / 'data_batch_5'} is missing" in _problem(excinfo)


# --- locating the dataset ----------------------------------------------------------------


def test_missing_directory_is_rejected_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_cifar10(tmp_path / "nowhere")

    assert f"{tmp_path / 'nowhere'} does not exist" in _problem(excinfo)
    assert "harness data synth DIR" in excinfo.value.fix
    assert "harness data fetch DIR" in excinfo.value.fix


def test_empty_directory_is_rejected_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        resolve_root(tmp_path)

    assert f"{tmp_path} is empty" in _problem(excinfo)
    assert "--data" in excinfo.value.fix


def test_file_given_as_the_dataset_directory_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")

    with pytest.raises(DataError) as excinfo:
        resolve_root(path)

    assert f"{path} is not a directory" in _problem(excinfo)


def test_directory_without_batch_files_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("nothing here")

    with pytest.raises(DataError) as excinfo:
        resolve_root(tmp_path)

    assert "holds neither a cifar-10-batches-py folder nor CIFAR-10 batch files" in _problem(
        excinfo
    )


def test_root_resolves_from_the_parent_or_the_batches_folder(tmp_path: Path) -> None:
    batches = _synth(tmp_path)

    assert resolve_root(tmp_path) == batches
    assert resolve_root(batches) == batches
    assert load_cifar10(tmp_path).digest == load_cifar10(batches).digest


def test_error_renders_as_one_line_with_problem_and_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_cifar10(tmp_path / "nowhere")

    line = excinfo.value.one_line()
    assert "\n" not in line
    assert line.startswith(f"CIFAR-10 directory {tmp_path / 'nowhere'} does not exist; run ")


# --- verify ------------------------------------------------------------------------------


def test_verify_reports_counts_and_matching_checksums(tmp_path: Path) -> None:
    batches = _synth(tmp_path, per_batch=20, test=30)

    report = verify(tmp_path)

    assert report.root == batches
    assert report.kind == "synthetic"
    assert (report.train_images, report.test_images) == (100, 30)
    assert report.train_class_counts == (10,) * 10
    assert report.test_class_counts == (3,) * 10
    assert report.checksums == "ok"


def test_verify_rejects_a_file_that_does_not_match_sha256sums(tmp_path: Path) -> None:
    batches = _synth(tmp_path)
    # A valid batch with other content: only the checksum can tell.
    data, labels = _rows(20)
    _write_batch(batches / "data_batch_2", data, labels, keys="str")
    load_cifar10(tmp_path)

    with pytest.raises(DataError) as excinfo:
        verify(tmp_path)

    assert "data_batch_2 does not match its checksum" in _problem(excinfo)


def test_verify_reports_absent_checksums_when_there_is_no_sha256sums(tmp_path: Path) -> None:
    batches = _synth(tmp_path)
    (batches / "SHA256SUMS").unlink()

    assert verify(tmp_path).checksums == "absent"


def test_verify_reads_sha256sums_kept_beside_the_batches_folder(tmp_path: Path) -> None:
    batches = _synth(tmp_path)
    (batches / "SHA256SUMS").rename(tmp_path / "SHA256SUMS")  # the shared subset's layout
    assert verify(tmp_path).checksums == "ok"

    (batches / TEST_FILE).write_bytes((batches / "data_batch_1").read_bytes())
    with pytest.raises(DataError) as excinfo:
        verify(batches)

    assert "test_batch does not match its checksum" in _problem(excinfo)


def test_verify_rejects_sha256sums_listing_a_missing_file(tmp_path: Path) -> None:
    batches = _synth(tmp_path)
    with (batches / "SHA256SUMS").open("a") as handle:
        handle.write(f"{'0' * 64}  extra_file\n")

    with pytest.raises(DataError) as excinfo:
        verify(tmp_path)

    assert "lists extra_file, which is missing" in _problem(excinfo)


# --- synthetic writer --------------------------------------------------------------------


def test_write_synthetic_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = _synth(tmp_path / "a", seed=5)
    second = _synth(tmp_path / "b", seed=5)
    other = _synth(tmp_path / "c", seed=6)

    names = sorted(p.name for p in first.iterdir())
    assert names == sorted([*ALL_BATCHES, META_FILE, "SYNTHETIC", "SHA256SUMS"])
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "data_batch_1").read_bytes() != (other / "data_batch_1").read_bytes()
    assert load_cifar10(first).digest == load_cifar10(second).digest
    assert load_cifar10(first).digest != load_cifar10(other).digest


def test_synthetic_batches_are_official_format_pickles(tmp_path: Path) -> None:
    batches = _synth(tmp_path, per_batch=20)
    raw = (batches / "data_batch_1").read_bytes()

    assert raw[:2] == b"\x80\x02"  # protocol 2
    batch = pickle.loads(raw)
    assert batch["data"].dtype == np.uint8 and batch["data"].shape == (20, 3072)
    assert isinstance(batch["labels"], list) and all(isinstance(v, int) for v in batch["labels"])
    assert sorted(batch["labels"]) == sorted(list(range(10)) * 2)  # balanced


def test_synthetic_images_are_learnable_by_a_nearest_class_mean(tmp_path: Path) -> None:
    _synth(tmp_path, per_batch=200, test=500, seed=3)
    data = load_cifar10(tmp_path)
    train = data.train_images.reshape(len(data.train_images), -1).astype(np.float32)
    test = data.test_images.reshape(len(data.test_images), -1).astype(np.float32)
    means = np.stack([train[data.train_labels == c].mean(axis=0) for c in range(10)])

    distances = ((test[:, None, :] - means[None, :, :]) ** 2).sum(axis=-1)
    accuracy = float((distances.argmin(axis=1) == data.test_labels).mean())

    assert accuracy > 0.5


def test_write_synthetic_refuses_to_overwrite_real_data(tmp_path: Path) -> None:
    batches = _write_official(tmp_path)
    before = (batches / "data_batch_1").read_bytes()

    with pytest.raises(DataError) as excinfo:
        write_synthetic(tmp_path)

    assert "already holds a real CIFAR-10 dataset" in _problem(excinfo)
    assert (batches / "data_batch_1").read_bytes() == before
    assert not (batches / "SYNTHETIC").exists()


def test_write_synthetic_rejects_a_non_positive_count(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        write_synthetic(tmp_path, train_per_batch=0)

    assert "train_per_batch must be >= 1, got 0" in _problem(excinfo)


# --- the real subset ---------------------------------------------------------------------


@pytest.mark.realdata
def test_real_subset_loads_with_known_counts_and_checksums() -> None:
    if not (REAL_SUBSET / "cifar-10-batches-py").is_dir():
        pytest.skip(f"real CIFAR-10 subset not found at {REAL_SUBSET}")

    data = load_cifar10(REAL_SUBSET)
    report = verify(REAL_SUBSET)

    assert data.train_images.shape == (5000, 32, 32, 3)
    assert data.test_images.shape == (1000, 32, 32, 3)
    assert data.kind == "real"
    assert np.bincount(data.test_labels).tolist() == [103, 89, 100, 103, 90, 86, 112, 102, 106, 109]
    assert report.test_class_counts == (103, 89, 100, 103, 90, 86, 112, 102, 106, 109)
    assert report.checksums == "ok"
    assert report.kind == "real"
