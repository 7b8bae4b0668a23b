"""What a framework runner implements: the small surface the shared pipeline drives.

Everything that must be identical across frameworks (data order, augmentation,
initial weights, learning-rate schedule, phase order, timing, latency method,
metrics) lives in the pipeline; a runner only says how its framework builds,
steps, predicts, quantizes, saves and calls a model, and which determinism switches
it sets.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness_contract.errors import HarnessError
from harness_contract.metrics.census import OpCensus
from harness_contract.metrics.figures import ConversionStats, SizeStats, TrainingStats
from harness_contract.runtimes import rungs
from harness_contract.spec import ExperimentSpec, OptimSpec, ProfileSpec
from harness_contract.study.breakdown import OpSample


class ThreadsUnsupported(HarnessError):
    """This model cannot be run at another thread count in this process; says why."""


class RungUnavailable(HarnessError):
    """This runtime cannot run this model here (not installed, no C++ compiler, a flow it
    cannot take); says why. The rung is recorded "unavailable", the study goes on."""


class Unsupported(HarnessError):
    """The framework cannot take this phase for this model at its installed versions: a
    framework limit, recorded as a finding (status "unsupported", the framework's own
    error and the workaround a user would try), not as the harness failing."""

    def __init__(self, error: str, workaround: str) -> None:
        super().__init__(error)
        self.error, self.workaround = error, workaround

    @property
    def reason(self) -> str:
        return f"{self.error} (workaround: {self.workaround})"


class ProfilerUnavailable(HarnessError):
    """No profiler can trace this model here (not installed, not exposed, not permitted)."""


@dataclass
class ProfileCapture:
    """What one profiler pass left: the trace on disk and the ops read off it."""

    tool: str
    device: str
    trace: Path | None  # a trace file, or a TensorBoard log directory
    viewer: Literal["perfetto", "tensorboard"] | None
    ops: list[OpSample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeviceInfo:
    train_device: str  # "cpu" or "cuda:0"
    gpu: str | None = None
    cuda: str | None = None
    cudnn: str | None = None


@dataclass(frozen=True)
class Quantized:
    model: Any
    conversion: ConversionStats


@dataclass(frozen=True)
class Saved:
    """What ``Framework.save`` wrote: the size figure, and every model file (or folder,
    e.g. a SavedModel) it saved, each digested into the variant's ``artifacts``."""

    size: SizeStats
    files: tuple[Path, ...]


@dataclass(frozen=True)
class RungInputs:
    """What a runtime rung may start from: the variant as its primary runtime runs it, the
    trained fp32 model, and the study's own calibration images and QAT fine-tuning for a
    runtime that needs a quantized model of its own (ExecuTorch's XNNPACKQuantizer)."""

    variant: str  # "baseline", "ptq" or "qat"
    model: Any
    fp32: Any
    calibration: Sequence[np.ndarray]  # the shared PTQ calibration batches, uint8 NHWC
    # The study's QAT fine-tuning (same stream, optimizer and epochs) on a prepared model.
    fine_tune: Callable[[Any], tuple[Any, TrainingStats | None]]
    max_batch: int  # the largest batch the lowered model will be called with


@dataclass
class Lowered:
    """A model ready to run on a rung's runtime (through predict, latency_call, save and
    threads_for like any other model), and what making it cost."""

    model: Any
    compile_s: float | None = None
    conversion: ConversionStats | None = None
    training: TrainingStats | None = None
    notes: list[str] = field(default_factory=list)
    # The lowered program's ops by family and precision (None: not counted).
    ops: OpCensus | None = None
    # The model as a user serving one batch size builds it (e.g. a static-shape compile)
    # and the seconds that took: latency at that batch is timed on it, so a rung is as
    # fast as its runtime. None: ``model`` already runs each batch as its runtime would
    # (a program resized per batch, a dynamic-batch program no slower than a static one).
    for_batch: Callable[[int], tuple[Any, float]] | None = None


class Trainer(ABC):
    """One optimizer over one model; ``step`` must not synchronize with the device."""

    @abstractmethod
    def step(self, images: np.ndarray, labels: np.ndarray, lr: float) -> None: ...

    @abstractmethod
    def end_epoch(self) -> tuple[float, float]:
        """Mean loss and accuracy over the epoch's batches; waits for the device."""


class Framework(ABC):
    name: str
    # The module whose probes answer harness_contract.study.support.PROBES for this framework
    # (run in a child process); None: this framework is not probed.
    probes_module: str | None = None

    @abstractmethod
    def versions(self) -> dict[str, str]: ...

    @abstractmethod
    def setup(self, spec: ExperimentSpec, threads: int) -> DeviceInfo:
        """Fix threads and seeds, pick the device."""

    @abstractmethod
    def determinism(self, enabled: bool) -> dict[str, str]:
        """Turn the framework's determinism switches on (or leave them at its defaults),
        after ``setup`` and before any model is built; return every switch that decides
        bits as it now stands, seeds included: name -> value, recorded in the provenance.
        Must cost nothing noticeable on CPU."""

    @abstractmethod
    def build(self, weights: dict[str, np.ndarray] | None) -> Any:
        """The fp32 model, loaded from canonical (OIHW) weights; None: the framework's own init."""

    @abstractmethod
    def trainer(self, model: Any, optim: OptimSpec) -> Trainer: ...

    @abstractmethod
    def predict(self, model: Any, images: np.ndarray) -> np.ndarray:
        """Logits (N, 10) for uint8 NHWC images, in inference mode."""

    @abstractmethod
    def device_of(self, model: Any) -> str:
        """Where this model runs its forward pass (int8 PyTorch models are CPU-only)."""

    @abstractmethod
    def quantize_ptq(self, model: Any, calibration: Sequence[np.ndarray]) -> Quantized:
        """Static int8 with calibration on the given uint8 batches; times it."""

    @abstractmethod
    def prepare_qat(self, model: Any) -> Any:
        """A fake-quantized copy of the fp32 model, ready to fine-tune."""

    @abstractmethod
    def convert_qat(self, model: Any) -> Quantized: ...

    @abstractmethod
    def save(self, model: Any, directory: Path, stem: str) -> Saved:
        """Write the model under ``directory`` as ``<stem>.*``; its size, and every file
        written (latency samples and traces are not the runner's to list)."""

    @abstractmethod
    def latency_call(self, model: Any, images: np.ndarray) -> tuple[Callable[[], object], str]:
        """A zero-argument call that runs one forward pass on prepared inputs, and its device."""

    @contextlib.contextmanager
    def threads_for(self, model: Any, threads: int) -> Iterator[None]:
        """Run what the block measures on ``threads`` threads, then restore the run's own.

        Raise ThreadsUnsupported (with the reason) when this model cannot.
        """
        raise ThreadsUnsupported(f"{self.name} cannot change its thread count after setup")
        yield  # pragma: no cover - makes this a generator

    def region(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Marks a named span in the running profiler's trace (no-op when none runs)."""
        return contextlib.nullcontext()

    def profile(
        self,
        model: Any,
        work: Callable[[int], object],
        schedule: ProfileSpec,
        trace_dir: Path,
        name: str,
    ) -> ProfileCapture:
        """Run ``work(i)`` for i in range(schedule.steps) under this framework's profiler,
        recording only the last ``schedule.active`` steps; write the trace under
        ``trace_dir`` (named after ``name``) and return the ops' self times.

        ``model`` tells which runtime will execute (e.g. a TFLite interpreter). Raise
        ProfilerUnavailable when nothing can trace it, saying why.
        """
        raise ProfilerUnavailable(f"the {self.name} runner has no profiler")

    def weights_of(self, model: Any) -> dict[str, np.ndarray] | None:
        """The fp32 model's weights under their canonical names and layouts (OIHW, as
        harness_contract.model.weights makes them), so a framework-default start can be digested
        and compared across frameworks; None when this runner cannot export them."""
        return None

    def layer_probe(self) -> Any:
        """This runner's harness_contract.layers.analysis.LayerProbe (per-layer fp32 and int8
        outputs, keep-float re-quantization), or None when it has none."""
        return None

    def rungs(self, variant: str) -> tuple[str, ...]:
        """The runtimes beyond the variant's primary one this framework measures it on."""
        return rungs(self.name, variant)

    def op_census(self, model: Any) -> OpCensus | None:
        """The model's ops by family, int8 against float, read from what the framework
        made of it (harness_contract.metrics.census); None: this runner does not count."""
        return None

    def lower(self, runtime: str, inputs: RungInputs) -> Lowered:
        """The variant made ready for ``runtime`` (compiled, exported, re-quantized), timed.

        Raise RungUnavailable (with the reason) when this machine or flow cannot run it.
        """
        raise RungUnavailable(f"the {self.name} runner has no {runtime} runtime")

    def reset_peak_gpu(self) -> None:  # noqa: B027 - optional hook, CPU-only frameworks skip it
        pass

    def peak_gpu_bytes(self) -> int | None:
        return None

    def variant_notes(self, variant: str, device: DeviceInfo) -> list[str]:
        return []
