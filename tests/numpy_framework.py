"""A tiny framework written in numpy, for testing the shared pipeline without torch or TF.

A linear softmax classifier on 8x8-pooled pixels, trained with the same SGD
semantics the runners use; "int8" is real symmetric per-tensor int8 weights with
int32 accumulation. Small, but every Framework method does real work.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness_contract.metrics.figures import ConversionStats, SizeStats
from harness_contract.spec import ExperimentSpec, OptimSpec, ProfileSpec
from harness_contract.study.breakdown import OpSample
from harness_contract.study.framework import (
    DeviceInfo,
    Framework,
    ProfileCapture,
    Quantized,
    Saved,
    Trainer,
)


class SpanRecorder:
    """A tiny real profiler: named spans timed with perf_counter while one is recording."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] | None = None  # (name, start_s, duration_s)

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        if self.spans is None:
            yield
            return
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.spans.append((name, t0, time.perf_counter() - t0))


RECORDER = SpanRecorder()


def features(images: np.ndarray) -> np.ndarray:
    with RECORDER.span("avg_pool"):
        pooled = images.reshape(len(images), 8, 4, 8, 4, 3).mean(axis=(2, 4)) / 255.0
        return pooled.reshape(len(images), -1).astype(np.float32) - 0.5


class Linear:
    def __init__(self, w: np.ndarray, b: np.ndarray) -> None:
        self.w, self.b = w, b

    def logits(self, x: np.ndarray) -> np.ndarray:
        with RECORDER.span("matmul"):
            return x @ self.w + self.b


class Int8Linear:
    def __init__(self, fp32: Linear, input_scale: float) -> None:
        self.w_scale = float(np.abs(fp32.w).max() / 127) or 1.0
        self.x_scale = input_scale
        self.w = np.round(fp32.w / self.w_scale).astype(np.int8)
        self.b = fp32.b.copy()

    def logits(self, x: np.ndarray) -> np.ndarray:
        with RECORDER.span("quantize_per_tensor"):
            xq = np.clip(np.round(x / self.x_scale), -128, 127).astype(np.int32)
        with RECORDER.span("int8 matmul"):
            acc = xq @ self.w.astype(np.int32)
        with RECORDER.span("dequantize"):
            return acc * (self.x_scale * self.w_scale) + self.b


class SGD(Trainer):
    def __init__(self, model: Linear, optim: OptimSpec) -> None:
        self.model, self.optim = model, optim
        self.buf: list[np.ndarray] | None = None
        self.losses: list[float] = []
        self.correct = self.seen = 0

    def step(self, images: np.ndarray, labels: np.ndarray, lr: float) -> None:
        x = features(images)
        z = self.model.logits(x)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        self.losses.append(float(-np.log(p[np.arange(len(labels)), labels] + 1e-12).mean()))
        self.correct += int((z.argmax(1) == labels).sum())
        self.seen += len(labels)
        p[np.arange(len(labels)), labels] -= 1
        grads = [x.T @ p / len(labels), p.mean(0)]
        params = [self.model.w, self.model.b]
        grads = [g + self.optim.weight_decay * w for g, w in zip(grads, params, strict=True)]
        if self.buf is None:
            self.buf = grads
        else:
            self.buf = [self.optim.momentum * b + g for b, g in zip(self.buf, grads, strict=True)]
        for w, b in zip(params, self.buf, strict=True):
            w -= lr * b

    def end_epoch(self) -> tuple[float, float]:
        out = float(np.mean(self.losses)), self.correct / max(self.seen, 1)
        self.losses, self.correct, self.seen = [], 0, 0
        return out


class NumpyFramework(Framework):
    name = "numpy"

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def setup(self, spec: ExperimentSpec, threads: int) -> DeviceInfo:
        self.rng = np.random.default_rng(spec.seed)
        self.seed = spec.seed
        return DeviceInfo(train_device="cpu")

    def determinism(self, enabled: bool) -> dict[str, str]:
        # numpy's kernels here are deterministic either way: only the request is recorded.
        self.deterministic = enabled
        return {"seed": str(self.seed), "deterministic": str(enabled)}

    def build(self, weights: dict[str, np.ndarray] | None) -> Linear:
        # The shared ResNet weights don't fit a linear model: take the fc bias as a
        # witness that the shared weights arrive, and start the weights at zero.
        bias = np.zeros(10, np.float32) if weights is None else weights["fc.bias"].copy()
        return Linear(np.zeros((192, 10), np.float32), bias)

    def trainer(self, model: Linear, optim: OptimSpec) -> Trainer:
        return SGD(model, optim)

    def predict(self, model: Any, images: np.ndarray) -> np.ndarray:
        return model.logits(features(images))

    def device_of(self, model: Any) -> str:
        return "cpu"

    def quantize_ptq(self, model: Linear, calibration: Sequence[np.ndarray]) -> Quantized:
        t0 = time.perf_counter()
        peak = max(float(np.abs(features(b)).max()) for b in calibration)
        t1 = time.perf_counter()
        q = Int8Linear(model, peak / 127)
        stats = ConversionStats(
            flow="numpy-int8",
            device="cpu",
            calibration_samples=sum(len(b) for b in calibration),
            calibration_s=t1 - t0,
            conversion_s=time.perf_counter() - t1,
            quantized_ops=["int8 matmul"],
        )
        return Quantized(q, stats)

    def prepare_qat(self, model: Linear) -> Linear:
        return Linear(model.w.copy(), model.b.copy())

    def convert_qat(self, model: Linear) -> Quantized:
        t0 = time.perf_counter()
        q = Int8Linear(model, 0.5 / 127)
        stats = ConversionStats(
            flow="numpy-int8",
            device="cpu",
            conversion_s=time.perf_counter() - t0,
            quantized_ops=["int8 matmul"],
        )
        return Quantized(q, stats)

    def save(self, model: Any, directory: Path, stem: str) -> Saved:
        path = directory / f"{stem}.npz"
        np.savez(path, w=model.w, b=model.b)
        size = SizeStats(
            bytes=path.stat().st_size, format="npz", parameters=192 * 10 + 10, file=path.name
        )
        return Saved(size, (path,))

    def latency_call(self, model: Any, images: np.ndarray) -> tuple[Callable[[], object], str]:
        x = features(images)
        return (lambda: model.logits(x)), "cpu"

    def region(self, name: str) -> contextlib.AbstractContextManager[None]:
        return RECORDER.span(name)

    def profile(
        self,
        model: Any,
        work: Callable[[int], object],
        schedule: ProfileSpec,
        trace_dir: Path,
        name: str,
    ) -> ProfileCapture:
        """Spans of the active steps only, written as a Chrome trace (what Perfetto opens)."""
        first_active = schedule.wait + schedule.warmup
        kept: list[tuple[str, float, float]] = []
        for i in range(schedule.steps):
            RECORDER.spans = [] if i >= first_active else None
            try:
                work(i)
            finally:
                kept += RECORDER.spans or []
                RECORDER.spans = None
        path = trace_dir / f"{name}.trace.json"
        events = [
            {"name": n, "ph": "X", "ts": t0 * 1e6, "dur": d * 1e6, "pid": 0, "tid": 0}
            for n, t0, d in kept
        ]
        path.write_text(json.dumps({"traceEvents": events}))
        ops = [OpSample(n, "cpu", d * 1e6) for n, _, d in kept]
        return ProfileCapture(
            tool="numpy spans", device="cpu", trace=path, viewer="perfetto", ops=ops
        )
