"""``harness doctor``: what this machine can run, and how to fix what it cannot.

Each check is small and fast; none imports a framework (versions come from package
metadata) and the Docker checks give up after a short timeout, so the whole run takes
well under two seconds where no engine answers. The dataset check parses every batch
file, as a run does before it starts (about a second for the full 60,000 images).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from harness.images import build as images
from harness_contract.errors import HarnessError

MIN_PYTHON = (3, 11)
HOST_PACKAGES = ("typer", "pandas", "pydantic")
DOCKER_TIMEOUT_S = 2


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report.

    ``ok`` is None where the check does not apply, or (with a ``fix``) where it only
    warns: something worth fixing that does not stop this machine from running studies.
    """

    name: str
    ok: bool | None
    detail: str
    fix: str = ""


def checks() -> list[Check]:
    """Run every check in display order."""
    result = [_python(), _host_packages()]
    result += [_runner(framework) for framework in images.FRAMEWORKS]
    client, engine = _engine()
    result += [_docker_sdk(), engine, _nvidia_runtime(client), _nvidia_smi()]
    result += [_base_digest(framework) for framework in images.FRAMEWORKS]
    result += [_harness_images(client), _dataset(), _data_cache()]
    return result


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _python() -> Check:
    found = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info[:2] >= MIN_PYTHON
    need = ".".join(map(str, MIN_PYTHON))
    return Check("python", ok, f"Python {found}", "" if ok else f"use Python {need} or newer")


def _host_packages() -> Check:
    found = {name: _version(name) for name in HOST_PACKAGES}
    missing = [name for name, version in found.items() if version is None]
    detail = ", ".join(f"{name} {version or 'missing'}" for name, version in found.items())
    return Check("host packages", not missing, detail, "pip install -e ." if missing else "")


def _runner(framework: str) -> Check:
    """The local backend's runner: importable, with the pinned framework versions."""
    name = f"local {framework} runner"
    extra = f"pip install -e '.[{framework}]'"
    if importlib.util.find_spec(images.RUNNER_PACKAGES[framework]) is None:
        return Check(name, False, f"{images.RUNNER_PACKAGES[framework]} not importable", extra)
    try:
        pins = images.load_lock().frameworks[framework].packages
    except HarnessError as exc:
        return Check(name, False, exc.one_line(), "restore images/lock.toml")
    found = {package: _version(package) for package in pins}
    detail = ", ".join(f"{package} {version or 'missing'}" for package, version in found.items())
    # A local build label (2.13.0+cpu) still satisfies the pin 2.13.0.
    wrong = [p for p, v in found.items() if v is None or v.split("+")[0] != pins[p]]
    if wrong:
        wanted = ", ".join(f"{p}=={pins[p]}" for p in wrong)
        return Check(name, False, detail, f"{extra} (needs {wanted})")
    return Check(name, True, detail)


def _docker_sdk() -> Check:
    version = _version("docker")
    if version is None:
        return Check("docker SDK", False, "not installed", "pip install -e '.[docker]'")
    return Check("docker SDK", True, f"docker {version}")


def _engine() -> tuple[Any | None, Check]:
    """Connect once; the later Docker checks reuse the client (or skip without one)."""
    try:
        client = images.docker_client(timeout=DOCKER_TIMEOUT_S)
        version = client.version().get("Version", "?")
    except HarnessError as exc:
        return None, Check("docker engine", False, exc.problem, exc.fix)
    except Exception as exc:  # noqa: BLE001 - any engine failure is a failed check, not a crash
        return None, Check("docker engine", False, str(exc), images.DOCKER_FIX)
    return client, Check("docker engine", True, f"Docker {version}")


def _nvidia_runtime(client: Any | None) -> Check:
    name = "nvidia container runtime"
    if client is None:
        return Check(name, None, "no Docker engine to ask")
    runtimes = sorted((client.info().get("Runtimes") or {}).keys())
    if "nvidia" in runtimes:
        return Check(name, True, f"runtimes: {', '.join(runtimes)}")
    # Without a GPU the runtime is not needed; with one, GPU runs in Docker need it.
    ok = None if shutil.which("nvidia-smi") is None else False
    return Check(
        name,
        ok,
        f"runtimes: {', '.join(runtimes) or 'none'}",
        "install nvidia-container-toolkit and run `nvidia-ctk runtime configure`"
        if ok is False
        else "",
    )


def _nvidia_smi() -> Check:
    name = "nvidia GPU"
    if shutil.which("nvidia-smi") is None:
        return Check(name, None, "nvidia-smi not found (CPU only)")
    query = ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
    try:
        result = subprocess.run(query, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check(name, False, f"nvidia-smi failed: {exc}", "check the NVIDIA driver")
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return Check(name, False, f"nvidia-smi failed: {last}", "check the NVIDIA driver")
    gpus = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return Check(name, True, "; ".join(gpus).replace(", ", " driver "))


def _base_digest(framework: str) -> Check:
    """Whether images/lock.toml pins the framework's CUDA base by digest, not just by tag."""
    name = f"{framework} base image"
    try:
        entry = images.load_lock().frameworks[framework]
    except HarnessError as exc:
        return Check(name, False, exc.one_line(), "restore images/lock.toml")
    if not entry.base_digest:
        return Check(
            name,
            None,
            f"images/lock.toml has no digest for {entry.base_image} (builds use the tag)",
            "harness images lock (where the registry is reachable)",
        )
    return Check(name, True, f"{entry.base_image}@{entry.base_digest[:19]}")


def _harness_images(client: Any | None) -> Check:
    """Both local images present, and each the locked one where the lock has a digest."""
    from docker.errors import ImageNotFound

    name = "harness images"
    if client is None:
        return Check(name, None, "no Docker engine to ask")
    present, missing, found = [], [], {}
    for framework in images.FRAMEWORKS:
        ref = images.image_ref(framework)
        try:
            found[framework] = client.images.get(ref)
        except ImageNotFound:
            missing.append(f"{ref} missing")
            continue
        versions = (found[framework].labels or {}).get(images.VERSIONS_LABEL)
        present.append(f"{ref} ({versions or 'no labels'})")
    unlocked = _not_locked(found)
    if unlocked:
        return Check(name, False, "; ".join(unlocked), "harness images pull")
    fix = "harness images build (or harness images pull)" if missing else ""
    return Check(name, not missing, "; ".join(present + missing), fix)


def _not_locked(found: dict[str, Any]) -> list[str]:
    """A line per local image that is not the one the lock's published digest names."""
    from harness.images.identity import mismatch

    try:
        lock = images.load_lock()
    except HarnessError as exc:
        return [exc.one_line()]
    problems = (mismatch(image, fw, images.image_ref(fw), lock) for fw, image in found.items())
    return [problem for problem in problems if problem]


def _dataset() -> Check:
    """The dataset runs would find, checked as a run checks it (every batch file parsed)."""
    from harness.data.source import locate
    from harness_contract.data.cifar import check_dataset

    name = "dataset"
    try:
        found = locate(None)
        if found is None:
            return Check(name, None, "no ./data and no $HARNESS_DATA: runs use synthetic images")
        summary = check_dataset(found[0])
    except HarnessError as exc:
        return Check(name, False, exc.problem, exc.fix)
    return Check(name, True, str(summary.root))


def _data_cache() -> Check:
    """Where synthetic data is cached: writable, with room for a full-size dataset."""
    from harness.data.source import CACHE_ELSEWHERE, FULL_TEST, FULL_TRAIN, cache_root
    from harness_contract.data.synthetic import disk_bytes
    from harness_contract.fs import room

    name = "data cache"
    cache = cache_root()
    if not os.access(room.existing_ancestor(cache), os.W_OK):
        return Check(name, False, f"{cache} is not writable", CACHE_ELSEWHERE)
    free = room.free_disk(cache)
    detail = f"synthetic data cached in {cache}"
    if free is None:
        return Check(name, True, detail)
    detail += f" ({room.size_text(free)} free)"
    need = disk_bytes(FULL_TRAIN + FULL_TEST)
    if free < need:
        return Check(
            name,
            None,
            f"{detail}; full-size synthetic data needs {room.size_text(need)}",
            "free space there, set XDG_CACHE_HOME to a folder with more, or pass --data DIR",
        )
    return Check(name, True, detail)
