"""What machine a result came from: CPU model, the ISA features int8 kernels use, cores."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys

# The features that decide which int8 kernels run (VNNI/AMX) and how fast fp32 is.
_INTERESTING_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "sve",
)


def cpu_model() -> str:
    info = _cpuinfo()
    for key in ("model name", "Hardware", "Processor"):
        if key in info:
            return info[key]
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return [f for f in _INTERESTING_FLAGS if f in flags]


def _cpuinfo() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() not in out:
                    out[key.strip()] = value.strip()
    except OSError:
        pass
    return out


def gpu_driver() -> str | None:
    """The NVIDIA driver version via nvidia-smi, if on PATH (frameworks do not expose it)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def network_interfaces() -> list[str]:
    """Network interfaces this process sees: only "lo" inside a container run without network."""
    try:
        return sorted(os.listdir("/sys/class/net"))
    except OSError:
        return []


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask: a container's --cpus, taskset),
    the default thread count and the sweep's core budget."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def python_version() -> str:
    return sys.version.split()[0]


def platform_string() -> str:
    return platform.platform()


def hostname() -> str:
    return socket.gethostname()
