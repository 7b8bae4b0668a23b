"""Host-side dataset commands: fetch the official CIFAR-10 archive into a directory.

The archive's MD5 is checked before anything is unpacked, unpacking puts plain files and
folders inside the destination only (harness_contract.fs.archive), and the new
folder only replaces the old one after it has been read and validated in full.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

from harness_contract.data.cifar import BATCHES_DIR, SYNTHETIC_MARKER, load_cifar10, resolve_root
from harness_contract.errors import DataError
from harness_contract.fs.archive import extract_inside
from harness_contract.fs.oserrors import os_error

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"

# Called as progress(bytes_received, total_bytes_or_None) while downloading.
Progress = Callable[[int, int | None], None]
_CHUNK = 1 << 20
_TIMEOUT_S = 30.0
WRITABLE = "choose a writable directory"
# Errors of the destination's disk, not of the archive: downloading again would not help.
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def _existing(dest: Path) -> Path | None:
    """The batches dir if dest already holds a readable real dataset; None if it holds none."""
    try:
        root = resolve_root(dest)
    except DataError:
        return None
    if (root / SYNTHETIC_MARKER).exists():
        raise DataError(
            f"{root} holds synthetic data; fetching the real dataset there would mix them",
            "fetch into another directory, or delete the synthetic folder first",
        )
    try:
        load_cifar10(root)
    except DataError:
        return None  # broken or partial: fetch again and replace it
    return root


def _make_workdir(dest: Path) -> Path:
    """A private temp folder inside dest: downloads and unpacking never touch the final path."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".fetch-", dir=dest))
    except OSError as exc:
        raise os_error(exc, dest, WRITABLE, writing=True, error=DataError) from None


def _network_error(url: str, dest: Path, reason: object) -> DataError:
    return DataError(
        f"could not download {url} ({reason})",
        f"check the network, or copy {ARCHIVE_NAME} here from another machine "
        f"and use `harness data fetch {dest} --archive FILE`",
    )


def _download(url: str, target: Path, dest: Path, progress: Progress | None) -> str:
    """Stream url into target; return the MD5 of what was received."""
    md5 = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            with target.open("wb") as out:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    md5.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
    except urllib.error.URLError as exc:
        raise _network_error(url, dest, exc.reason) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException, ValueError) as exc:
        raise _network_error(url, dest, str(exc) or type(exc).__name__) from None
    except OSError as exc:
        raise DataError(
            f"could not save the download to {target} ({exc.strerror or exc})",
            "free some disk space or choose another directory",
        ) from None
    return md5.hexdigest()


def _md5_file(path: Path) -> str:
    md5 = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            md5.update(chunk)
    return md5.hexdigest()


def _check_md5(source: str, expected: str, actual: str) -> None:
    if actual.lower() != expected.lower():
        raise DataError(
            f"{source} has MD5 {actual}, expected {expected.lower()}; nothing was unpacked",
            "download the archive again (it is truncated or not the official one)",
        )


def _extract(archive: Path, into: Path, dest: Path) -> Path:
    """Unpack safely and validate; return the unpacked batches dir."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            extract_inside(tar, into)
    except OSError as exc:
        if exc.errno in _DISK_ERRORS:
            raise os_error(exc, dest, WRITABLE, writing=True, error=DataError) from None
        raise DataError(f"cannot unpack {archive} ({exc})", "download the archive again") from None
    except (tarfile.TarError, EOFError, zlib.error, ValueError) as exc:
        raise DataError(f"cannot unpack {archive} ({exc})", "download the archive again") from None
    batches = into / BATCHES_DIR
    if not batches.is_dir():
        raise DataError(
            f"{archive} does not contain a {BATCHES_DIR} folder", "use the official archive"
        )
    load_cifar10(batches)  # raises DataError naming the bad file
    return batches


def _install(unpacked: Path, dest: Path, work: Path) -> Path:
    """Move the validated folder into place; a broken old one goes to work, then away."""
    final = dest / BATCHES_DIR
    try:
        if final.exists():
            final.rename(work / "replaced")
        unpacked.rename(final)
    except OSError as exc:
        raise os_error(exc, dest, WRITABLE, writing=True, error=DataError) from None
    return final


def _obtain(
    dest: Path, url: str, md5: str, progress: Progress | None, archive: Path | None, work: Path
) -> Path:
    """Return a local archive whose MD5 matches, downloading into work when needed."""
    if archive is not None:
        if not archive.is_file():
            raise DataError(f"archive {archive} does not exist", f"pass the path of {ARCHIVE_NAME}")
        _check_md5(str(archive), md5, _md5_file(archive))
        return archive
    target = work / ARCHIVE_NAME
    _check_md5(f"the download from {url}", md5, _download(url, target, dest, progress))
    return target


def fetch(
    dest: Path,
    url: str = OFFICIAL_URL,
    md5: str = OFFICIAL_MD5,
    progress: Progress | None = None,
    archive: Path | None = None,
) -> Path:
    """Make dest hold the CIFAR-10 dataset and return its ``cifar-10-batches-py`` folder.

    A valid dataset already there is returned as is. Otherwise the archive (``archive``,
    or a download from ``url``) must match ``md5`` before it is unpacked.
    """
    dest = Path(dest)
    present = _existing(dest) if dest.exists() else None
    if present is not None:
        return present
    work = _make_workdir(dest)
    try:
        source = _obtain(dest, url, md5, progress, Path(archive) if archive else None, work)
        return _install(_extract(source, work / "unpacked", dest), dest, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
