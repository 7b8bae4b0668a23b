"""Profiler passes after a phase's timed work, apart from every timed figure.

For each profiled phase: training steps on a fresh copy (baseline, QAT), so profiling
never changes the study's models, and the phase model's forward pass. A failing or
missing profiler never fails the phase: the pass is recorded with its reason.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness_contract import events
from harness_contract.data.cifar import Cifar10
from harness_contract.failures import reason_of
from harness_contract.fs.disk import size_on_disk
from harness_contract.layout import FrameworkDir
from harness_contract.metrics.figures import ProfileStats
from harness_contract.spec import ExperimentSpec, OptimSpec
from harness_contract.study.breakdown import OpSample, summarize
from harness_contract.study.framework import Framework, ProfileCapture, ProfilerUnavailable
from harness_contract.study.measurement import latency_images
from harness_contract.study.provenance import start_weights
from harness_contract.study.schedule import lr_at
from harness_contract.study.training import cycle, train_stream

log = logging.getLogger("harness.profiling")

# What a pass profiles: the model that runs, work(i) for step i, and the input
# hand-over times (µs) the pipeline measured itself.
Work = tuple[Any, Callable[[int], object], list[float]]


@dataclass(frozen=True)
class ProfilePass:
    kind: str  # "train" or "inference"
    batch_size: int
    prepare: Callable[[], Work]


@dataclass
class Profiling:
    """The profiler passes of a study."""

    fw: Framework
    spec: ExperimentSpec
    data: Cifar10
    out: FrameworkDir
    device: str  # where training runs, recorded when a pass has no capture
    threads: int

    def passes(self, phase: str, model: Any, fp32: Any = None) -> list[ProfilePass]:
        """The passes a phase gets under measure.profile (none when profiling is off)."""
        profile = self.spec.measure.profile
        if not profile.enabled:
            return []
        passes = []
        optim = {"baseline": self.spec.train, "qat": self.spec.qat}.get(phase)
        if profile.train and optim is not None and optim.epochs > 0:
            passes.append(
                ProfilePass(
                    "train",
                    optim.batch_size,
                    lambda: self.train_work(phase, fp32, optim),
                )
            )
        if profile.inference:
            bs = profile.inference_batch_size
            passes.append(ProfilePass("inference", bs, lambda: self.inference_work(model, bs)))
        return passes

    def run(self, phase: str, model: Any, fp32: Any = None) -> Iterator[ProfileStats]:
        """Each pass of the phase in turn, announced by "profile" events."""
        for p in self.passes(phase, model, fp32):
            events.emit("profile", phase=phase, trace=p.kind, state="start")
            stats = self.run_pass(phase, p)
            yield stats
            events.emit("profile", phase=phase, trace=p.kind, state=stats.status)

    def run_pass(self, phase: str, p: ProfilePass) -> ProfileStats:
        schedule = self.spec.measure.profile
        base = dict(
            kind=p.kind, threads=self.threads, steps=schedule.active, batch_size=p.batch_size
        )
        try:
            self.out.traces.mkdir(parents=True, exist_ok=True)
            target, work, input_us = p.prepare()
            capture = self.fw.profile(target, work, schedule, self.out.traces, f"{phase}-{p.kind}")
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a profiler problem must never cost the study
            if isinstance(exc, ProfilerUnavailable):
                status, reason = "unavailable", exc.one_line()
            else:
                log.error("profiling %s %s failed:\n%s", phase, p.kind, traceback.format_exc())
                status, reason = "failed", reason_of(exc)
            return ProfileStats(status=status, reason=reason, device=self.device, **base)
        return self._stats(capture, input_us, base)

    def _stats(
        self, capture: ProfileCapture, input_us: list[float], base: dict[str, Any]
    ) -> ProfileStats:
        ops = list(capture.ops)
        if input_us:  # the shared stream's time to hand over batches, timed by the pipeline
            ops.append(
                OpSample("harness stream: next batch", "cpu", sum(input_us), len(input_us), "data")
            )
        breakdown, top_ops, totals = summarize(ops)
        trace = capture.trace
        return ProfileStats(
            status="ok",
            tool=capture.tool,
            device=capture.device,
            trace=self.out.relative(trace) if trace else None,
            viewer=capture.viewer,
            trace_bytes=size_on_disk(trace) if trace else None,
            total_us=totals,
            breakdown=breakdown,
            top_ops=top_ops,
            notes=capture.notes,
            **base,
        )

    def train_work(self, phase: str, fp32: Any, optim: OptimSpec) -> Work:
        """Training steps on a fresh copy, fed the same first batches the phase trained on;
        the stream's hand-over is marked as a "harness::input" region and timed."""
        schedule = self.spec.measure.profile
        if phase == "baseline":
            model = self.fw.build(start_weights(self.spec.model, self.spec.seed))
        else:
            model = self.fw.prepare_qat(fp32)
        trainer = self.fw.trainer(model, optim)
        stream = train_stream(self.data, optim, self.spec.seed, self.spec.data.augment, phase)
        if len(stream) == 0:
            raise ValueError(f"batch_size {optim.batch_size} exceeds the training images")
        steps, first_active = len(stream), schedule.wait + schedule.warmup
        batches = cycle(stream)
        input_us: list[float] = []

        def work(i: int) -> None:
            t0 = time.perf_counter()
            with self.fw.region("harness::input"):
                batch = next(batches)
            if i >= first_active:
                input_us.append((time.perf_counter() - t0) * 1e6)
            trainer.step(batch.images, batch.labels, lr_at(optim, 0, i % steps, steps))
            if i == schedule.steps - 1:
                trainer.end_epoch()  # waits for the device, so the last step is recorded whole

        return model, work, input_us

    def inference_work(self, model: Any, batch_size: int) -> Work:
        call, _ = self.fw.latency_call(model, latency_images(self.data, batch_size))
        return model, (lambda i: call()), []
