"""Memory accounting of a phase and its parts, on its own (a fake GPU counter)."""

from __future__ import annotations

from harness_contract.study.memory import PhaseMemory, larger

from .numpy_framework import NumpyFramework


class FakeGPU:
    """An allocator counter: ``use(n)`` allocates n transiently, resets go back to 0."""

    def __init__(self) -> None:
        self.peak = 0

    def use(self, amount: int) -> None:
        self.peak = max(self.peak, amount)

    def reset_peak_gpu(self) -> None:
        self.peak = 0

    def peak_gpu_bytes(self) -> int | None:
        return self.peak


def test_phase_memory_keeps_each_parts_peak_and_the_phases_largest() -> None:
    gpu = FakeGPU()
    memory = PhaseMemory(gpu)
    with memory.phase():
        gpu.use(50)  # before any part: the phase's own
        with memory.part("training"):
            gpu.use(300)
        with memory.part("inference"):
            gpu.use(100)
        with memory.part("inference"):
            gpu.use(120)  # a part seen twice keeps its larger peak
    stats = memory.stats()
    assert (stats.training_peak_gpu_bytes, stats.inference_peak_gpu_bytes) == (300, 120)
    assert stats.peak_gpu_bytes == 300  # resets between parts do not lose the phase's peak
    assert 0 < stats.training_peak_rss_bytes <= stats.peak_rss_bytes
    with memory.phase():  # the next phase starts from nothing
        gpu.use(10)
    stats = memory.stats()
    assert stats.peak_gpu_bytes == 10 and stats.training_peak_rss_bytes is None


def test_without_a_gpu_every_gpu_peak_stays_empty() -> None:
    memory = PhaseMemory(NumpyFramework())
    with memory.phase(), memory.part("inference"):
        pass
    stats = memory.stats()
    assert stats.peak_gpu_bytes is stats.inference_peak_gpu_bytes is None
    assert larger(None, None) is None and larger(3, None) == 3 and larger(2, 5) == 5
