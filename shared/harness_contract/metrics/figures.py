"""The figures measuring one model produces, as parts of ``metrics.json``: latency,
training, conversion, size, artifact digests, accuracy (and its repeat check), memory
and the profiler's breakdown. Units are in the field names, as in the file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness_contract.strict import Strict


class EnergyStats(Strict):
    """Board energy over one latency window (the timed calls only, warm-up excluded), read
    through NVML on the GPU that ran them; on a CPU run, "not measured" with the reason."""

    status: Literal["measured", "not measured"]
    reason: str | None = None  # why not measured
    # "nvml energy counter" (nvmlDeviceGetTotalEnergyConsumption, preferred) or
    # "nvml power samples" (nvmlDeviceGetPowerUsage every interval_ms, integrated).
    source: str | None = None
    gpu: str | None = None  # the board read, e.g. "NVIDIA H200 (nvml index 0)"
    window_s: float | None = Field(default=None, ge=0)  # wall time the reading covers
    total_j: float | None = Field(default=None, ge=0)  # the whole board, idle power included
    per_call_j: float | None = Field(default=None, ge=0)  # total_j / timed calls
    per_image_j: float | None = Field(default=None, ge=0)  # per_call_j / batch_size
    mean_power_w: float | None = Field(default=None, ge=0)  # total_j / window_s
    power_samples: int | None = Field(default=None, ge=0)  # power readings taken
    interval_ms: float | None = Field(default=None, gt=0)  # between power readings


class LatencyStats(Strict):
    """One latency measurement: per-call times of a forward pass at a fixed batch size."""

    batch_size: int = Field(ge=1)
    device: str
    threads: int = Field(ge=1)
    n: int = Field(ge=1)
    total_s: float = Field(ge=0)
    mean_ms: float = Field(ge=0)
    std_ms: float = Field(ge=0)
    min_ms: float = Field(ge=0)
    p50_ms: float = Field(ge=0)
    p90_ms: float = Field(ge=0)
    p99_ms: float = Field(ge=0)
    max_ms: float = Field(ge=0)
    # Why measuring stopped: both minimums reached, or a cap hit first.
    stop_reason: Literal["min_count_and_duration", "max_count", "max_seconds"]
    # Raw per-call samples, relative to the framework directory.
    samples_file: str | None = None
    # The machine's 1-minute load average when measuring began: above the core count,
    # other work competed for the CPU and these latencies are inflated.
    load_1m: float | None = Field(default=None, ge=0)
    # Board energy over the timed calls (None: a file from before energy was read).
    energy: EnergyStats | None = None

    @property
    def p50_per_sample_ms(self) -> float:
        return self.p50_ms / self.batch_size

    @property
    def p90_per_sample_ms(self) -> float:
        return self.p90_ms / self.batch_size


class TrainingStats(Strict):
    device: str
    threads: int = Field(ge=1)
    epochs: int = Field(ge=0)
    wall_s: float = Field(ge=0)
    epoch_s: list[float] = Field(default_factory=list)
    images: int = Field(ge=0)
    images_per_s: float = Field(ge=0)
    loss: list[float] = Field(default_factory=list)  # mean training loss per epoch
    train_accuracy: list[float] = Field(default_factory=list)  # on augmented batches


class ConversionStats(Strict):
    """PTQ: calibration then conversion. QAT: conversion only (calibration_s is None)."""

    flow: str
    device: str
    calibration_samples: int | None = Field(default=None, ge=0)
    calibration_s: float | None = Field(default=None, ge=0)
    conversion_s: float = Field(ge=0)
    # Names of int8 kernels found in the converted graph (proof it really is int8).
    quantized_ops: list[str] = Field(default_factory=list)


class SizeStats(Strict):
    bytes: int = Field(ge=0)
    format: str  # e.g. "state_dict" (PyTorch, the paper's measure) or "tflite"
    parameters: int = Field(ge=0)
    file: str | None = None
    # The same model in other serialized forms, e.g. TensorFlow's fp32 .tflite: format -> bytes.
    other_formats: dict[str, int] = Field(default_factory=dict)


class ArtifactDigest(Strict):
    """One saved model file (or a file inside a saved model folder) and its sha256, so a
    rerun can be checked bit for bit."""

    file: str  # relative to the framework directory
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class RepeatCheck(Strict):
    """The model run a second time on the first evaluation batch at the run's threads.
    Any difference means its outputs, and so its top-1, vary between identical calls
    (PyTorch 2.13's oneDNN int8 1x1 stride-2 conv does on AVX2 with 2 threads)."""

    images: int = Field(ge=1)
    threads: int = Field(ge=1)
    max_abs_diff: float = Field(ge=0)  # largest logit difference between the two calls
    changed_predictions: int = Field(ge=0)  # images whose predicted class differs


class AccuracyStats(Strict):
    top1: float = Field(ge=0, le=1)
    n: int = Field(ge=1)
    device: str
    # Share of test images where this variant predicts the same class as fp32.
    agreement_with_fp32: float | None = Field(default=None, ge=0, le=1)
    # The discordant test images against fp32 (McNemar's test of the change needs only
    # these): correct here but not in fp32, and correct in fp32 but not here.
    only_this_correct: int | None = Field(default=None, ge=0)
    only_fp32_correct: int | None = Field(default=None, ge=0)
    repeat: RepeatCheck | None = None  # None: files from before the check


class MemoryStats(Strict):
    """Peaks over the whole phase, and over its training and its inference alone
    (evaluation and latency runs). GPU figures are PyTorch's / TensorFlow's allocator peaks."""

    peak_rss_bytes: int = Field(ge=0)
    peak_gpu_bytes: int | None = Field(default=None, ge=0)
    training_peak_rss_bytes: int | None = Field(default=None, ge=0)
    training_peak_gpu_bytes: int | None = Field(default=None, ge=0)
    inference_peak_rss_bytes: int | None = Field(default=None, ge=0)
    inference_peak_gpu_bytes: int | None = Field(default=None, ge=0)


class OpTime(Strict):
    """Self time of one op category on one device during a profiled window."""

    category: str  # a key of harness_contract.study.breakdown.CATEGORIES
    device: Literal["cpu", "gpu"]
    time_us: float = Field(ge=0)
    share: float = Field(ge=0, le=1)  # of all profiled op time on this device


class TopOp(Strict):
    name: str
    category: str
    device: Literal["cpu", "gpu"]
    time_us: float = Field(ge=0)
    calls: int = Field(ge=0)
    share: float = Field(ge=0, le=1)


class ProfileStats(Strict):
    """One profiler pass (a short scheduled window, never the timed runs) and what it found."""

    kind: Literal["train", "inference"]
    status: Literal["ok", "unavailable", "failed"]
    reason: str | None = None  # why there is no trace or no breakdown
    tool: str | None = None  # e.g. "torch.profiler", "tf.profiler (xplane)"
    device: str  # where the profiled work ran
    threads: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    steps: int = Field(ge=0)  # profiled (active) steps; the wait and warm-up steps are not
    # The trace, relative to the framework directory: a file (Chrome/Perfetto JSON) or a
    # TensorBoard log directory; and what opens it.
    trace: str | None = None
    viewer: Literal["perfetto", "tensorboard"] | None = None
    trace_bytes: int | None = Field(default=None, ge=0)
    # Per device, the profiled ops' total self time over the active steps.
    total_us: dict[str, float] = Field(default_factory=dict)
    breakdown: list[OpTime] = Field(default_factory=list)
    top_ops: list[TopOp] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
