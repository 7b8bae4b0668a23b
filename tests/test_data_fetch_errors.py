"""`harness data fetch` when the disk fills, the folder is read-only, or Ctrl-C comes while
unpacking: one line naming the folder and the fix, and no partial dataset left behind."""

from __future__ import annotations

import errno
import os
import tarfile
from pathlib import Path

import pytest

from harness.data.fetch import fetch
from harness_contract.data.cifar import write_synthetic
from harness_contract.errors import DataError

from .test_datasets import _md5, _tar_gz


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    batches = write_synthetic(tmp_path / "src", train_per_batch=20, test_count=10, seed=1)
    return _tar_gz(tmp_path / "cifar-10-python.tar.gz", batches, "cifar-10-batches-py")


def _raise(exc: BaseException):
    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    return fail


@pytest.mark.parametrize(
    ("code", "says", "fix"),
    [
        (errno.ENOSPC, "no space left", "free space"),
        (errno.EROFS, "read-only", "writable"),
        (errno.EACCES, "permission denied", "writable"),
    ],
)
def test_unpacking_onto_a_full_or_read_only_disk_names_the_folder_and_the_fix(
    tmp_path: Path, archive: Path, monkeypatch: pytest.MonkeyPatch, code: int, says: str, fix: str
) -> None:
    dest = tmp_path / "dest"
    error = OSError(code, os.strerror(code))
    monkeypatch.setattr(tarfile.TarFile, "extractall", _raise(error))

    with pytest.raises(DataError) as excinfo:
        fetch(dest, archive=archive, md5=_md5(archive))

    line = excinfo.value.one_line()
    assert str(dest) in line and says in line and fix in line, line
    assert "download the archive again" not in line
    assert sorted(p.name for p in dest.iterdir()) == []


def test_moving_the_dataset_into_place_on_a_full_disk_is_one_line(
    tmp_path: Path, archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "dest"
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if Path(target).name == "cifar-10-batches-py":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(DataError) as excinfo:
        fetch(dest, archive=archive, md5=_md5(archive))

    assert str(dest) in excinfo.value.one_line() and "no space left" in excinfo.value.one_line()
    assert sorted(p.name for p in dest.iterdir()) == []


def test_ctrl_c_while_unpacking_leaves_no_partial_dataset(
    tmp_path: Path, archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "dest"
    monkeypatch.setattr(tarfile.TarFile, "extractall", _raise(KeyboardInterrupt()))

    with pytest.raises(KeyboardInterrupt):
        fetch(dest, archive=archive, md5=_md5(archive))

    assert sorted(p.name for p in dest.iterdir()) == []
