"""Peak resident memory over a region of code, sampled in a background thread.

``ru_maxrss`` only ever grows over a process's life, so it cannot give one
phase's peak; sampling /proc/self/statm can. Where /proc is missing (macOS),
ru_maxrss is the fallback and the peak is then the process's so far.
``PhaseMemory`` splits one phase's peaks into its training and inference parts.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Protocol

from harness_contract.metrics.figures import MemoryStats

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return max_rss_bytes()


def max_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


class PeakRSS:
    """``with PeakRSS() as m: ...`` then ``m.peak_bytes``."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, current_rss_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRSS:
        self.peak_bytes = current_rss_bytes()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, current_rss_bytes())


class GpuPeakCounter(Protocol):
    """What a framework offers for GPU memory (Framework.reset_peak_gpu/peak_gpu_bytes)."""

    def reset_peak_gpu(self) -> None: ...

    def peak_gpu_bytes(self) -> int | None: ...


def larger(a: int | None, b: int | None) -> int | None:
    """The larger of two optional peaks (None: not measured)."""
    return b if a is None else a if b is None else max(a, b)


class PhaseMemory:
    """Peak RSS and GPU memory of one phase and of its parts ("training", "inference").

    ``with memory.phase(): ...`` resets the peaks and measures the whole phase; inside it,
    ``with memory.part("training"): ...`` measures a part (a part seen twice keeps its
    larger peaks). The GPU counter is reset for every part, so the phase's own GPU peak
    is carried over each reset. ``stats()`` gives the phase's MemoryStats.
    """

    def __init__(self, gpu: GpuPeakCounter) -> None:
        self.gpu = gpu
        self._phase_rss: int | None = None
        self._gpu_peak: int | None = None
        self._parts: dict[str, int | None] = {}

    @contextlib.contextmanager
    def phase(self) -> Iterator[PhaseMemory]:
        self._phase_rss, self._gpu_peak, self._parts = None, None, {}
        with PeakRSS() as rss:
            self.gpu.reset_peak_gpu()
            yield self
        self._phase_rss = rss.peak_bytes
        self._gpu_peak = larger(self._gpu_peak, self.gpu.peak_gpu_bytes())

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        self._gpu_peak = larger(self._gpu_peak, self.gpu.peak_gpu_bytes())
        self.gpu.reset_peak_gpu()
        with PeakRSS() as rss:
            yield
        gpu = self.gpu.peak_gpu_bytes()
        self._gpu_peak = larger(self._gpu_peak, gpu)
        for kind, value in (("rss", rss.peak_bytes), ("gpu", gpu)):
            key = f"{name}_peak_{kind}_bytes"
            self._parts[key] = larger(self._parts.get(key), value)

    def stats(self) -> MemoryStats:
        parts_rss = [v for k, v in self._parts.items() if k.endswith("rss_bytes") and v]
        return MemoryStats(
            # Samplers run apart: a part's sampler can catch a peak the phase's missed.
            peak_rss_bytes=max([self._phase_rss or 0, *parts_rss]),
            peak_gpu_bytes=self._gpu_peak,
            **self._parts,
        )
