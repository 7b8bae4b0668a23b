"""Artifact digests: the sha256 of every saved model file, named relative to the framework
directory, a saved folder digested file by file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness_contract.data.cifar import write_synthetic
from harness_contract.fs.digests import artifact_digests, sha256_file


def test_sha256_file_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    blob = bytes(range(256)) * 9000  # more than one read chunk
    path.write_bytes(blob)
    assert sha256_file(path) == hashlib.sha256(blob).hexdigest()


def test_files_and_folders_are_digested_one_file_at_a_time_sorted(tmp_path: Path) -> None:
    art = tmp_path / "artifacts"
    (art / "saved_model" / "variables").mkdir(parents=True)
    (art / "baseline.tflite").write_bytes(b"fp32")
    (art / "saved_model" / "saved_model.pb").write_bytes(b"graph")
    (art / "saved_model" / "variables" / "variables.index").write_bytes(b"ix")

    digests = artifact_digests([art / "saved_model", art / "baseline.tflite"], tmp_path)

    assert [d.file for d in digests] == [
        "artifacts/baseline.tflite",
        "artifacts/saved_model/saved_model.pb",
        "artifacts/saved_model/variables/variables.index",
    ]
    first = digests[0]
    assert first.sha256 == hashlib.sha256(b"fp32").hexdigest() and first.bytes == 4


def test_a_file_listed_twice_is_digested_once(tmp_path: Path) -> None:
    (tmp_path / "a.pt").write_bytes(b"x")
    assert len(artifact_digests([tmp_path / "a.pt", tmp_path / "a.pt"], tmp_path)) == 1


def test_a_declared_file_that_was_not_written_is_a_runner_bug(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        artifact_digests([tmp_path / "missing.pt"], tmp_path)


def test_a_file_outside_the_framework_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.pt").write_bytes(b"x")
    with pytest.raises(ValueError):
        artifact_digests([tmp_path / "elsewhere.pt"], tmp_path / "pytorch")


def test_the_dataset_checksums_agree_with_the_same_file_digest(tmp_path: Path) -> None:
    root = write_synthetic(tmp_path, train_per_batch=10, test_count=10, seed=0)
    for line in (root / "SHA256SUMS").read_text().splitlines():
        expected, name = line.split()
        assert sha256_file(root / name) == expected
