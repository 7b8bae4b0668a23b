"""Synthetic data and its cache are written whole or not at all: an interrupted or failed
write leaves no folder a later run would pick up, racing writers keep one complete
folder, and disk full, read-only or unwritable folders end in one line with a fix."""

from __future__ import annotations

import errno
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.data.source import choose_data
from harness_contract.data.cifar import BATCHES_DIR, load_cifar10, write_synthetic
from harness_contract.errors import DataError
from harness_contract.fs import room
from harness_contract.spec import build_spec

SMALL = [
    "data.train_limit=100",
    "data.test_limit=20",
    "ptq.calibration_samples=10",
    "train.batch_size=10",
    "qat.batch_size=10",
]

FULL_SIZE = ["data.train_limit=null", "data.test_limit=null"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty synthetic-data cache, and a working directory without ./data."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path / "xdg" / "quant-compare-harness"


def _fail_after(monkeypatch: pytest.MonkeyPatch, files: int, exc: BaseException) -> None:
    """Let the writer encode ``files`` batch files, then raise ``exc`` (Ctrl-C, say)."""
    real = pickle.dumps
    done = [0]

    def dumps(*args: object, **kwargs: object) -> bytes:
        if done[0] >= files:
            raise exc
        done[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(pickle, "dumps", dumps)


def _datasets_under(folder: Path) -> list[Path]:
    """Every folder below ``folder`` that holds a file (complete or not)."""
    if not folder.exists():
        return []
    return sorted({p.parent for p in folder.rglob("*") if p.is_file()})


def _os_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


# ---------------------------------------------------------------- interrupted writes


def test_interrupted_synth_leaves_nothing_and_the_next_write_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "dest"
    _fail_after(monkeypatch, 1, KeyboardInterrupt())

    with pytest.raises(KeyboardInterrupt):
        write_synthetic(dest, train_per_batch=10, test_count=10, seed=3)

    assert not (dest / BATCHES_DIR).exists()
    assert _datasets_under(dest) == []
    monkeypatch.undo()
    batches = write_synthetic(dest, train_per_batch=10, test_count=10, seed=3)
    fresh = write_synthetic(tmp_path / "fresh", train_per_batch=10, test_count=10, seed=3)
    assert load_cifar10(batches).digest == load_cifar10(fresh).digest


def test_interrupted_cache_write_leaves_no_cache_and_the_next_run_regenerates(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = build_spec("smoke", None, SMALL)
    _fail_after(monkeypatch, 1, KeyboardInterrupt())

    with pytest.raises(KeyboardInterrupt):
        choose_data(None, spec)

    assert _datasets_under(cache) == []
    monkeypatch.undo()
    choice = choose_data(None, spec)
    data = load_cifar10(choice.path)
    assert choice.origin == "synthetic"
    assert (len(data.train_labels), len(data.test_labels)) == (100, 20)


def test_broken_cache_left_by_an_older_harness_is_regenerated(cache: Path) -> None:
    spec = build_spec("smoke", None, SMALL)
    first = choose_data(None, spec).path
    (first / "data_batch_4").unlink()  # what a killed, non-atomic writer left behind

    again = choose_data(None, spec)

    assert again.path == first
    assert len(load_cifar10(again.path).train_labels) == 100


def test_folder_abandoned_by_a_killed_writer_is_swept_away(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **_OUT)
    host = socket.gethostname()
    abandoned = tmp_path / f".{BATCHES_DIR}.partial-{host}-{int(dead.stdout)}-abcd1234"
    abandoned.mkdir()
    (abandoned / "data_batch_1").write_bytes(b"half")
    live = tmp_path / f".{BATCHES_DIR}.partial-{host}-{os.getpid()}-efgh5678"
    live.mkdir()

    write_synthetic(tmp_path, train_per_batch=10, test_count=10)

    assert not abandoned.exists()
    assert live.exists()  # another writer, still running, owns it


_OUT = {"capture_output": True, "text": True, "check": True}


def test_losing_a_race_keeps_the_winners_complete_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pickle.dumps
    raced = [False]

    def dumps(*args: object, **kwargs: object) -> bytes:
        if not raced[0]:  # while we write, another process finishes the same folder
            raced[0] = True
            monkeypatch.setattr(pickle, "dumps", real)
            winner = write_synthetic(tmp_path, train_per_batch=10, test_count=10, seed=1)
            monkeypatch.setattr(pickle, "dumps", dumps)
            assert winner == tmp_path / BATCHES_DIR
        return real(*args, **kwargs)

    monkeypatch.setattr(pickle, "dumps", dumps)
    batches = write_synthetic(tmp_path, train_per_batch=10, test_count=10, seed=2)

    reference = write_synthetic(tmp_path / "seed1", train_per_batch=10, test_count=10, seed=1)
    assert raced[0]
    assert load_cifar10(batches).digest == load_cifar10(reference).digest
    assert sorted(p.name for p in tmp_path.iterdir()) == [BATCHES_DIR, "seed1"]


# ---------------------------------------------------------------- OS errors, one line each


@pytest.mark.parametrize(
    ("code", "says", "fix"),
    [
        (errno.ENOSPC, "no space left", "free space"),
        (errno.EROFS, "read-only", "writable"),
        (errno.EACCES, "permission", "writable"),
    ],
)
def test_synth_that_cannot_write_names_the_folder_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, says: str, fix: str
) -> None:
    def fsync(fd: int) -> None:
        raise _os_error(code)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(DataError) as excinfo:
        write_synthetic(tmp_path / "dest", train_per_batch=10, test_count=10)

    line = excinfo.value.one_line()
    assert str(tmp_path / "dest") in line and says in line.lower() and fix in line, line
    assert _datasets_under(tmp_path) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_cache_that_cannot_be_written_says_how_to_move_it(
    cache: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    real_mkdir = os.mkdir

    def mkdir(path: object, *args: object, **kwargs: object) -> None:
        if str(path).startswith(str(cache)):
            raise _os_error(code)
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(DataError) as excinfo:
        choose_data(None, build_spec("smoke", None, SMALL))

    line = excinfo.value.one_line()
    assert str(cache) in line, line
    assert "XDG_CACHE_HOME" in line and "--data" in line, line


# ---------------------------------------------------------------- room on disk and in memory


def test_synth_larger_than_the_free_disk_is_refused_with_the_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(room, "free_disk", lambda path: 1_000_000)

    with pytest.raises(DataError) as excinfo:
        write_synthetic(tmp_path / "dest", train_per_batch=1000, test_count=1000)

    line = excinfo.value.one_line()
    assert "6000 images" in line and "disk" in line and "1.0 MB free" in line, line
    assert str(tmp_path / "dest") in line
    assert not (tmp_path / "dest" / BATCHES_DIR).exists()


def test_synth_larger_than_the_free_memory_is_refused_with_the_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(room, "available_memory", lambda: 2_000_000)

    with pytest.raises(DataError) as excinfo:
        write_synthetic(tmp_path / "dest", train_per_batch=1000, test_count=1000)

    line = excinfo.value.one_line()
    assert "memory" in line and "2.0 MB available" in line, line
    assert not (tmp_path / "dest" / BATCHES_DIR).exists()


def test_cache_larger_than_the_free_disk_is_refused_before_writing(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(room, "free_disk", lambda path: 10_000_000)

    with pytest.raises(DataError) as excinfo:
        choose_data(None, build_spec("smoke", None, FULL_SIZE))

    line = excinfo.value.one_line()
    assert "60000 images" in line and "XDG_CACHE_HOME" in line and "--data" in line, line
    assert _datasets_under(cache) == []


def test_available_memory_is_known_on_linux() -> None:
    if not Path("/proc/meminfo").exists():
        pytest.skip("no /proc/meminfo")
    assert (room.available_memory() or 0) > 1_000_000


def test_synth_into_a_read_only_folder_is_refused_before_generating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if mode & os.W_OK else real_access(p, mode)
    )
    _fail_after(monkeypatch, 0, AssertionError("generated data for a folder it cannot write"))

    with pytest.raises(DataError) as excinfo:
        write_synthetic(tmp_path / "dest", train_per_batch=10, test_count=10)

    line = excinfo.value.one_line()
    assert f"cannot write to {tmp_path / 'dest'}" in line and "read-only or not writable" in line
    assert f"{tmp_path} is the nearest existing folder" in line
