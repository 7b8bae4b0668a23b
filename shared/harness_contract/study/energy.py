"""Board energy of the timed latency calls, read through NVML where a GPU runs them, so
a report gives joules per inference beside latency.

NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``: millijoules since
the driver loaded, Volta and later) is read at both ends of the window: exact, and no
thread runs beside the timed calls. A board without it is sampled instead: a thread reads
``nvmlDeviceGetPowerUsage`` (milliwatts) every ``INTERVAL_S`` and the readings are
integrated. Either way the figure is the whole board's over the window's wall time, idle
power included: what a deployment pays per call, not the kernels' share alone.

A CPU row is "not measured", with the reason: these VMs expose no RAPL counters, and the
harness reads no CPU energy. pynvml (the nvidia-ml-py package) is imported only when a
GPU row is timed: the host and CPU runs never need it.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness_contract.metrics.figures import EnergyStats

INTERVAL_S = 0.02  # between power readings, where the board has no energy counter
NO_PYNVML = "no NVML: the nvidia-ml-py package is not installed (pip install nvidia-ml-py)"
RAPL = Path("/sys/class/powercap")


class EnergyMeter(Protocol):
    def start(self) -> None:
        """Called right before the first timed call."""

    def stop(self, calls: int, batch_size: int) -> EnergyStats:
        """Called right after the last one: the window's energy, or why there is none."""


@dataclass(frozen=True)
class NotMeasured:
    reason: str

    def start(self) -> None:
        pass

    def stop(self, calls: int, batch_size: int) -> EnergyStats:
        return EnergyStats(status="not measured", reason=self.reason)


def cpu_reason(powercap: Path = RAPL) -> str:
    """Why a CPU row has no energy: NVML reads GPU boards only, and RAPL is not read."""
    rapl = powercap.is_dir() and any(p.name.startswith("intel-rapl") for p in powercap.iterdir())
    where = "RAPL counters exist here but are not read" if rapl else "no RAPL counters here"
    return f"no NVML (CPU run; {where})"


def gpu_index(device: str) -> int | None:
    """The CUDA index of a device string ("cuda:0", "cuda", "/GPU:1"); None for a CPU."""
    match = re.search(r"(?:cuda|gpu)(?::(\d+))?", device, re.IGNORECASE)
    if match is None:
        return None
    return int(match.group(1) or 0)


def nvml_target(cuda_index: int, environ: Mapping[str, str] = os.environ) -> int | str:
    """The NVML index (or UUID) of a CUDA index: CUDA_VISIBLE_DEVICES renumbers what CUDA
    sees, NVML does not. Raises IndexError when the index is not among the visible ones."""
    visible = environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if not visible:
        return cuda_index
    entry = [e.strip() for e in visible.split(",") if e.strip()][cuda_index]
    return int(entry) if entry.isdigit() else entry  # "GPU-<uuid>" or "MIG-<uuid>"


class NvmlUnavailable(Exception):
    pass


_NVML: Any = None  # pynvml, initialised once per process


def load_nvml() -> Any:
    """pynvml after nvmlInit, or NvmlUnavailable with the reason as one line."""
    global _NVML
    if _NVML is None:
        try:
            import pynvml
        except ImportError:
            raise NvmlUnavailable(NO_PYNVML) from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(f"no NVML: nvmlInit failed ({exc})") from None
        _NVML = pynvml
    return _NVML


def meter_for(device: str, nvml: Any = None) -> EnergyMeter:
    """The meter for calls timed on ``device``; ``nvml``: the pynvml module (loaded when
    None)."""
    index = gpu_index(device)
    if index is None:
        return NotMeasured(cpu_reason())
    try:
        nvml = nvml if nvml is not None else load_nvml()
        target = nvml_target(index)
    except NvmlUnavailable as exc:
        return NotMeasured(str(exc))
    except IndexError:
        return NotMeasured(f"{device} is not among CUDA_VISIBLE_DEVICES, so NVML cannot name it")
    try:
        if isinstance(target, int):
            handle = nvml.nvmlDeviceGetHandleByIndex(target)
        else:
            handle = nvml.nvmlDeviceGetHandleByUUID(target)
        name = nvml.nvmlDeviceGetName(handle)
    except nvml.NVMLError as exc:
        return NotMeasured(f"NVML could not open the board of {device} ({exc})")
    name = name.decode() if isinstance(name, bytes) else str(name)
    return NvmlMeter(nvml, handle, f"{name} (nvml {target})")


class NvmlMeter:
    """One board's energy over a window: the counter where the board has one, else
    power readings integrated over time."""

    def __init__(
        self,
        nvml: Any,
        handle: Any,
        gpu: str,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.nvml, self.handle, self.gpu = nvml, handle, gpu
        self.interval_s, self.clock = interval_s, clock
        self._start_mj: int | None = None
        self._t0 = 0.0
        self._readings: list[tuple[float, float]] = []  # (seconds, watts)
        self._error: str | None = None
        self._done = threading.Event()
        self._sampler: threading.Thread | None = None

    def start(self) -> None:
        self._readings, self._error = [], None
        self._start_mj = self._counter()
        self._done.clear()
        if self._start_mj is None:  # no counter: sample power beside the calls
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        self._t0 = self.clock()

    def stop(self, calls: int, batch_size: int) -> EnergyStats:
        t1 = self.clock()
        end_mj = self._counter() if self._start_mj is not None else None
        self._done.set()
        if self._sampler is not None:
            self._sampler.join()
            self._sampler = None
        window = t1 - self._t0
        samples: int | None = None
        if self._start_mj is not None and end_mj is not None and end_mj > self._start_mj:
            total_j, source = (end_mj - self._start_mj) / 1000, "nvml energy counter"
        elif self._start_mj is None and len(self._readings) >= 2:
            total_j, source = mean_power(self._readings) * window, "nvml power samples"
            samples = len(self._readings)
        else:
            return EnergyStats(status="not measured", reason=self._why_none(window, end_mj))
        interval_ms = None if samples is None else self.interval_s * 1000
        return energy_stats(
            total_j, window, calls, batch_size, source, self.gpu, samples, interval_ms
        )

    def _why_none(self, window: float, end_mj: int | None) -> str:
        if self._error:
            return f"NVML stopped answering ({self._error})"
        if self._start_mj is not None and end_mj is None:
            return "NVML's energy counter could not be read at the window's end"
        if self._start_mj is not None:
            what = "its energy counter did not move"
        else:
            what = f"{len(self._readings)} power reading(s)"
        return f"the {window * 1000:.0f} ms window was too short for NVML ({what})"

    def _counter(self) -> int | None:
        try:
            return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except self.nvml.NVMLError:  # not supported on this board (pre-Volta), or lost
            return None

    def _sample(self) -> None:
        while True:
            try:
                milliwatts = self.nvml.nvmlDeviceGetPowerUsage(self.handle)
            except self.nvml.NVMLError as exc:
                self._error = str(exc)
                return
            self._readings.append((self.clock(), milliwatts / 1000))
            if self._done.wait(self.interval_s):
                return


def mean_power(readings: list[tuple[float, float]]) -> float:
    """Watts averaged over time (trapezoids): readings need not be evenly spaced."""
    pairs = zip(readings, readings[1:], strict=False)
    area = sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in pairs)
    span = readings[-1][0] - readings[0][0]
    return area / span if span > 0 else sum(w for _, w in readings) / len(readings)


def energy_stats(
    total_j: float,
    window_s: float,
    calls: int,
    batch_size: int,
    source: str,
    gpu: str,
    power_samples: int | None = None,
    interval_ms: float | None = None,
) -> EnergyStats:
    """Joules per call and per image from the window's total."""
    per_call = total_j / calls
    return EnergyStats(
        status="measured",
        source=source,
        gpu=gpu,
        window_s=window_s,
        total_j=total_j,
        per_call_j=per_call,
        per_image_j=per_call / batch_size,
        mean_power_w=total_j / window_s if window_s > 0 else None,
        power_samples=power_samples,
        interval_ms=interval_ms,
    )
