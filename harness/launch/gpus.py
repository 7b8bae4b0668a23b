"""`--gpus all|none|N|ID,ID`: which GPUs a container gets, as Docker device requests.

The text follows `docker run --gpus` (also its `device=0,1` form), so a user who knows
Docker knows this option. The docker SDK is imported only when requests are built: the
host must start (and parse options) where the SDK is not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from harness_contract.errors import HarnessError

if TYPE_CHECKING:
    from docker.types import DeviceRequest

ACCEPTED = "use all, none, a count such as 2, or device ids such as 0,1 (also device=0,1)"
DRIVER_CAPABILITIES = "compute,utility"  # CUDA plus nvidia-smi/NVML; nothing for graphics

# An index (0), a MIG index (0:1) or a UUID (GPU-9a1b..., MIG-...), as nvidia-smi -L shows.
_ID = re.compile(r"^(\d+(:\d+)?|(GPU|MIG)-[A-Za-z0-9/-]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class GpuRequest:
    kind: Literal["none", "all", "count", "ids"]
    count: int = 0
    device_ids: tuple[str, ...] = ()

    @property
    def wants_gpu(self) -> bool:
        return self.kind != "none"

    def spec_device(self) -> str:
        return "cuda" if self.wants_gpu else "cpu"

    def device_requests(self) -> list[DeviceRequest]:
        """What `docker run --gpus <same text>` would send to the engine."""
        from docker.types import DeviceRequest

        if self.kind == "none":
            return []
        if self.kind == "all":
            return [DeviceRequest(count=-1, capabilities=[["gpu"]])]
        if self.kind == "count":
            return [DeviceRequest(count=self.count, capabilities=[["gpu"]])]
        return [DeviceRequest(device_ids=list(self.device_ids), capabilities=[["gpu"]])]

    def environment(self) -> dict[str, str]:
        # "void" matters: CUDA base images set NVIDIA_VISIBLE_DEVICES=all, which on an
        # engine whose default runtime is nvidia would hand out every GPU anyway.
        return {
            "NVIDIA_VISIBLE_DEVICES": self._visible_devices(),
            "NVIDIA_DRIVER_CAPABILITIES": DRIVER_CAPABILITIES,
        }

    def _visible_devices(self) -> str:
        if self.kind == "none":
            return "void"
        if self.kind == "all":
            return "all"
        if self.kind == "count":
            # The engine's NVIDIA driver turns a count N into the first N indices too.
            return ",".join(str(i) for i in range(self.count))
        return ",".join(self.device_ids)

    def __str__(self) -> str:
        if self.kind == "count":
            return str(self.count)
        if self.kind == "ids":
            return ",".join(self.device_ids)
        return self.kind


NO_GPUS = GpuRequest("none")


def parse_gpus(text: str | None) -> GpuRequest:
    """Parse the `--gpus` option; None or empty means no GPUs."""
    value = (text or "none").strip()
    lowered = value.lower()
    if lowered in ("none", ""):
        return NO_GPUS
    if lowered == "all":
        return GpuRequest("all")
    if lowered.isdigit():
        return _count(value)
    ids_text = value[len("device=") :] if lowered.startswith("device=") else value
    ids = tuple(part.strip() for part in ids_text.split(","))
    if ids and all(_ID.match(i) for i in ids):
        return GpuRequest("ids", device_ids=tuple(dict.fromkeys(ids)))
    raise _invalid(text)


def _count(value: str) -> GpuRequest:
    n = int(value)
    return NO_GPUS if n == 0 else GpuRequest("count", count=n)


def _invalid(text: str | None) -> HarnessError:
    return HarnessError(f"--gpus '{text}' is not understood", ACCEPTED)


NO_HOST_GPU_FIX = (
    "drop --gpus to run on the CPU, or run on a host with an NVIDIA GPU and its driver"
)


def host_gpu_problem() -> str | None:
    """Why this host cannot give a runner a GPU (no nvidia-smi, or it lists none); None
    when it lists at least one. Asked before any runner starts, so `--gpus` on a CPU host
    fails in one line instead of after every framework has loaded."""
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi is not installed (no NVIDIA driver here)"
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi -L failed ({exc})"
    if listed.returncode != 0 or "GPU" not in listed.stdout:
        last = (listed.stderr.strip().splitlines() or ["it lists no GPU"])[-1]
        return f"nvidia-smi -L: {last}"
    return None


def require_host_gpus(gpus: GpuRequest) -> None:
    """Refuse `--gpus` (other than none) on a host without an NVIDIA GPU."""
    if not gpus.wants_gpu:
        return
    problem = host_gpu_problem()
    if problem is not None:
        raise HarnessError(
            f"--gpus {gpus} asks for GPUs but this host has none: {problem}", NO_HOST_GPU_FIX
        )
