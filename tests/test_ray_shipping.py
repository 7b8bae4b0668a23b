"""A run directory shipped back from a Ray node (harness.sweep.point.pack / unpack), also
under a Python without tarfile's extraction filters (``tar_python``, conftest.py)."""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import Path

import pytest

from harness.sweep.point import pack, unpack


def _archive(*members: tarfile.TarInfo) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return buffer.getvalue()


def test_a_packed_run_directory_unpacks_whole(tar_python: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "pytorch").mkdir(parents=True)
    (run / "report.md").write_text("# report\n")
    (run / "pytorch" / "runner.log").write_text("READY\n")
    archive, left_files, _ = pack(run, fetch_all=True)
    unpack(archive, tmp_path / "back")
    assert left_files == 0
    assert (tmp_path / "back" / "report.md").read_text() == "# report\n"
    assert (tmp_path / "back" / "pytorch" / "runner.log").read_text() == "READY\n"


@pytest.mark.parametrize("name", ["../outside.txt", "link"])
def test_an_archive_reaching_outside_the_run_directory_is_refused(
    tar_python: str, tmp_path: Path, name: str
) -> None:
    member = tarfile.TarInfo(name)
    if name == "link":
        member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
    else:
        member.size = 1
    with pytest.raises((ValueError, tarfile.TarError)):
        unpack(_archive(member), tmp_path / "back")
    assert not (tmp_path / "outside.txt").exists()
    assert not (tmp_path / "back" / "link").exists()


def test_an_absolute_name_never_lands_outside_the_run_directory(
    tar_python: str, tmp_path: Path
) -> None:
    """Refused (without filters) or put inside with its leading slash stripped ("data")."""
    absolute = tmp_path / "elsewhere.txt"
    member = tarfile.TarInfo(str(absolute))
    member.size = 1
    with contextlib.suppress(ValueError, tarfile.TarError):
        unpack(_archive(member), tmp_path / "back")
    assert not absolute.exists()
