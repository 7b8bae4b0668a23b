"""Fetching CIFAR-10 (harness.data.fetch): MD5 before unpacking, safe extraction, clear errors.

No test touches the network: archives are built here from synthetic data, and downloads
come from a loopback HTTP server or an unreachable loopback port.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.data.fetch import fetch
from harness_contract.data.cifar import load_cifar10, write_synthetic
from harness_contract.errors import DataError

UNREACHABLE = "http://127.0.0.1:9/cifar-10-python.tar.gz"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _tar_gz(path: Path, folder: Path, arcname: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return path


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """A tar.gz laid out like the official archive, holding a small synthetic dataset."""
    batches = write_synthetic(tmp_path / "src", train_per_batch=20, test_count=10, seed=1)
    return _tar_gz(tmp_path / "cifar-10-python.tar.gz", batches, "cifar-10-batches-py")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(archive: Path) -> Iterator[str]:
    """The archive's URL on a loopback HTTP server."""
    handler = functools.partial(_QuietHandler, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{archive.name}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_from_local_archive_with_matching_md5_unpacks_a_loadable_dataset(
    tar_python: str, tmp_path: Path, archive: Path
) -> None:
    dest = tmp_path / "dest"

    batches = fetch(dest, archive=archive, md5=_md5(archive), url=UNREACHABLE)

    assert batches == dest / "cifar-10-batches-py"
    data = load_cifar10(batches)
    assert data.train_images.shape == (100, 32, 32, 3)
    assert data.test_images.shape == (10, 32, 32, 3)
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-batches-py"]  # no temp left


def test_fetch_from_archive_with_wrong_md5_unpacks_nothing(tmp_path: Path, archive: Path) -> None:
    dest = tmp_path / "dest"
    wrong = "0" * 32

    with pytest.raises(DataError) as excinfo:
        fetch(dest, archive=archive, md5=wrong)

    assert f"has MD5 {_md5(archive)}, expected {wrong}" in excinfo.value.problem
    assert str(archive) in excinfo.value.problem
    assert list(dest.iterdir()) == []


def test_fetch_with_missing_archive_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        fetch(tmp_path / "dest", archive=tmp_path / "nope.tar.gz")

    assert f"archive {tmp_path / 'nope.tar.gz'} does not exist" in excinfo.value.problem


def test_fetch_from_unreachable_url_fails_quickly_with_one_clear_line(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    started = time.monotonic()

    with pytest.raises(DataError) as excinfo:
        fetch(dest, url=UNREACHABLE)

    assert time.monotonic() - started < 10
    assert excinfo.value.problem.startswith(f"could not download {UNREACHABLE} (")
    assert f"harness data fetch {dest} --archive FILE" in excinfo.value.fix
    assert "\n" not in excinfo.value.one_line()
    assert list(dest.iterdir()) == []  # the partial download is gone


def test_fetch_downloads_verifies_and_reports_progress(tmp_path: Path, served: str) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    calls: list[tuple[int, int | None]] = []

    batches = fetch(
        tmp_path / "dest", url=served, md5=_md5(archive), progress=lambda d, t: calls.append((d, t))
    )

    size = archive.stat().st_size
    assert calls[-1] == (size, size)
    assert load_cifar10(batches).test_labels.shape == (10,)


def test_download_with_wrong_md5_is_deleted_and_nothing_unpacked(
    tmp_path: Path, served: str
) -> None:
    dest = tmp_path / "dest"

    with pytest.raises(DataError) as excinfo:
        fetch(dest, url=served, md5="f" * 32)

    assert f"the download from {served} has MD5" in excinfo.value.problem
    assert f"expected {'f' * 32}" in excinfo.value.problem
    assert list(dest.iterdir()) == []


def test_fetch_returns_an_existing_valid_dataset_without_downloading(tmp_path: Path) -> None:
    batches = write_synthetic(tmp_path / "dest", train_per_batch=20, test_count=10)
    (batches / "SYNTHETIC").unlink()  # now it looks like real data already fetched

    assert fetch(tmp_path / "dest", url=UNREACHABLE) == batches
    assert fetch(batches, url=UNREACHABLE) == batches


def test_fetch_refuses_to_mix_real_data_into_a_synthetic_folder(
    tmp_path: Path, archive: Path
) -> None:
    batches = write_synthetic(tmp_path / "dest", train_per_batch=20, test_count=10, seed=9)
    before = (batches / "data_batch_1").read_bytes()

    with pytest.raises(DataError) as excinfo:
        fetch(tmp_path / "dest", archive=archive, md5=_md5(archive))

    assert f"{batches} holds synthetic data" in excinfo.value.problem
    assert (batches / "data_batch_1").read_bytes() == before


def test_fetch_replaces_a_broken_dataset(tmp_path: Path, archive: Path) -> None:
    batches = write_synthetic(tmp_path / "dest", train_per_batch=20, test_count=10, seed=9)
    (batches / "SYNTHETIC").unlink()
    (batches / "data_batch_2").write_bytes(b"broken")

    result = fetch(tmp_path / "dest", archive=archive, md5=_md5(archive))

    assert result == batches
    assert load_cifar10(result).train_images.shape == (100, 32, 32, 3)
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["cifar-10-batches-py"]


def test_archive_without_the_batches_folder_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "readme.txt").write_text("not cifar")
    bad = _tar_gz(tmp_path / "other.tar.gz", folder, "other")
    dest = tmp_path / "dest"

    with pytest.raises(DataError) as excinfo:
        fetch(dest, archive=bad, md5=_md5(bad))

    assert "does not contain a cifar-10-batches-py folder" in excinfo.value.problem
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("kind", ["parent", "link"])
def test_archive_with_a_member_escaping_the_destination_is_rejected(
    tar_python: str, kind: str, tmp_path: Path
) -> None:
    bad = tmp_path / "evil.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        payload = b"owned"
        member = tarfile.TarInfo("../escaped.txt")
        member.size = len(payload)
        if kind == "link":
            member = tarfile.TarInfo("cifar-10-batches-py/escaped.txt")
            member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(member, io.BytesIO(payload) if member.isfile() else None)
    dest = tmp_path / "deep" / "dest"

    with pytest.raises(DataError) as excinfo:
        fetch(dest, archive=bad, md5=_md5(bad))

    assert f"cannot unpack {bad}" in excinfo.value.problem
    assert not list(tmp_path.rglob("escaped.txt"))


def test_archive_that_is_not_a_tar_gz_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "plain.tar.gz"
    bad.write_bytes(b"not gzip at all")

    with pytest.raises(DataError) as excinfo:
        fetch(tmp_path / "dest", archive=bad, md5=_md5(bad))

    assert f"cannot unpack {bad}" in excinfo.value.problem


def test_unwritable_destination_is_rejected(tmp_path: Path, archive: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    with pytest.raises(DataError) as excinfo:
        fetch(blocker / "dest", archive=archive, md5=_md5(archive))

    assert f"cannot write to {blocker / 'dest'}" in excinfo.value.problem
    assert excinfo.value.fix == "choose a writable directory"
