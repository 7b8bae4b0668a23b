"""The study, phase by phase, identical for every framework.

baseline (train fp32, evaluate, size, latency) -> PTQ (calibrate, convert,
evaluate) -> QAT (fine-tune fake-quantized from the baseline, convert,
evaluate). metrics.json is rewritten after every phase, so a crash or Ctrl-C
keeps what was finished. A failing phase is recorded with its reason and the
study moves on to whatever does not depend on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, events, system
from .breakdown import OpSample, summarize
from .cifar import Cifar10
from .disk import size_on_disk
from .framework import DeviceInfo, Framework, ProfilerUnavailable, Quantized, ThreadsUnsupported
from .latency import measure_latency
from .memory import PeakRSS
from .metrics import (
    AccuracyStats,
    DatasetInfo,
    LatencyStats,
    MemoryStats,
    MetricsFile,
    ProfileStats,
    Provenance,
    TrainingStats,
    VariantMetrics,
    now_iso,
    write_metrics,
)
from .schedule import lr_at
from .spec import ExperimentSpec, OptimSpec
from .stream import TrainStream, calibration_indices, eval_batches
from .weights import initial_weights, weights_digest

log = logging.getLogger("harness.pipeline")


@dataclass
class Study:
    fw: Framework
    spec: ExperimentSpec
    data: Cifar10
    out_dir: Path
    run_id: str
    runtime: str

    def __post_init__(self) -> None:
        self.artifacts = self.out_dir / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.out_dir / "metrics.json"
        self._peaks: dict[str, int | None] = {}  # the running phase's memory peaks

    # ------------------------------------------------------------ driver
    def run(self, threads: int) -> MetricsFile:
        device = self.fw.setup(self.spec, threads)
        self.device, self.threads = device, threads
        self.metrics = self._new_metrics(device, threads)
        self._save()
        events.emit("start", framework=self.fw.name, device=device.train_device, threads=threads)
        try:
            fp32 = self._phase("baseline", self._baseline)
            self._profile("baseline", fp32)
            for name, enabled, body in (
                ("ptq", self.spec.ptq.enabled, self._ptq),
                ("qat", self.spec.qat.enabled, self._qat),
            ):
                if not enabled:
                    self._skip(name, f"disabled in the spec ({name}.enabled = false)")
                elif fp32 is None:
                    self._skip(name, "the baseline phase failed, so there is no fp32 model")
                else:
                    model = self._phase(name, lambda body=body: body(fp32))
                    self._profile(name, model, fp32)
        except KeyboardInterrupt:
            self.metrics.status = "interrupted"
            self.metrics.error = "interrupted before the study finished"
            self._save()
            raise
        self.metrics.status = "complete"
        self._save()
        events.emit("done", framework=self.fw.name, status="complete")
        return self.metrics

    def _phase(self, name: str, body: Callable[[], tuple[Any, VariantMetrics]]) -> Any:
        """Run one phase; its model, or None when it failed (recorded with the reason)."""
        precision = "fp32" if name == "baseline" else "int8"
        events.emit("phase", phase=name, state="start")
        try:
            self._peaks = {}
            with PeakRSS() as rss:
                self.fw.reset_peak_gpu()
                model, variant = body()
            parts_rss = [v for k, v in self._peaks.items() if k.endswith("rss_bytes") and v]
            variant.memory = MemoryStats(
                # Samplers run apart: a part's sampler can catch a peak the phase's missed.
                peak_rss_bytes=max([rss.peak_bytes, *parts_rss]),
                peak_gpu_bytes=_max(self._peaks.get("gpu"), self.fw.peak_gpu_bytes()),
                **{k: v for k, v in self._peaks.items() if k != "gpu"},
            )
            variant.notes += self.fw.variant_notes(name, self.device)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one phase's failure must not lose the others
            log.error("phase %s failed:\n%s", name, traceback.format_exc())
            reason = _reason(exc)
            self.metrics.variants[name] = VariantMetrics(
                variant=name, status="failed", precision=precision, reason=reason
            )
            self._save()
            events.emit("phase", phase=name, state="failed", reason=reason)
            return None
        self.metrics.variants[name] = variant
        self._save()
        events.emit(
            "phase",
            phase=name,
            state="done",
            accuracy=variant.accuracy.top1 if variant.accuracy else None,
        )
        return model

    @contextlib.contextmanager
    def _memory(self, part: str):
        """Peak RSS and GPU memory over one part of a phase ("training" or "inference");
        a part seen twice keeps its larger peaks. The GPU counter is reset for the part,
        so the phase's own peak is carried in ``_peaks["gpu"]``."""
        peaks = self._peaks
        peaks["gpu"] = _max(peaks.get("gpu"), self.fw.peak_gpu_bytes())
        self.fw.reset_peak_gpu()
        with PeakRSS() as rss:
            yield
        gpu = self.fw.peak_gpu_bytes()
        peaks["gpu"] = _max(peaks["gpu"], gpu)
        for kind, value in (("rss", rss.peak_bytes), ("gpu", gpu)):
            key = f"{part}_peak_{kind}_bytes"
            peaks[key] = _max(peaks.get(key), value)

    def _skip(self, name: str, reason: str) -> None:
        precision = "fp32" if name == "baseline" else "int8"
        self.metrics.variants[name] = VariantMetrics(
            variant=name, status="skipped", precision=precision, reason=reason
        )
        self._save()
        events.emit("phase", phase=name, state="skipped", reason=reason)

    # ------------------------------------------------------------ phases
    def _baseline(self):
        model = self.fw.build(self._initial_weights())
        training = None
        if self.spec.train.epochs > 0:
            model, training = self._train(model, self.spec.train, "baseline")
        logits = self._predict(model)
        self.fp32_predictions = logits.argmax(1)
        variant = VariantMetrics(
            variant="baseline",
            status="ok",
            precision="fp32",
            accuracy=self._accuracy(logits, model, compare=False),
            training=training,
        )
        self._measure(model, variant, "baseline")
        return model, variant

    def _start_weights(self) -> dict[str, np.ndarray] | None:
        """The shared initial weights made from the seed; None: the framework's own init."""
        if self.spec.model.init == "framework":
            return None
        return initial_weights(self.spec.model, self.spec.seed)

    def _initial_weights(self) -> dict[str, np.ndarray] | None:
        weights = self._start_weights()
        self.metrics.initial_weights = (
            "framework-default" if weights is None else f"shared:{weights_digest(weights)}"
        )
        return weights

    def _ptq(self, fp32):
        cal = self.spec.ptq
        idx = calibration_indices(
            len(self.data.train_images), cal.calibration_samples, self.spec.seed
        )
        images = self.data.train_images[idx]
        batches = [
            images[i : i + cal.calibration_batch_size]
            for i in range(0, len(images), cal.calibration_batch_size)
        ]
        q = self.fw.quantize_ptq(fp32, batches)
        return q.model, self._quantized_variant("ptq", q)

    def _qat(self, fp32):
        model = self.fw.prepare_qat(fp32)
        training = None
        if self.spec.qat.epochs > 0:
            model, training = self._train(model, self.spec.qat, "qat")
        q = self.fw.convert_qat(model)
        variant = self._quantized_variant("qat", q)
        variant.training = training
        return q.model, variant

    def _quantized_variant(self, name: str, q: Quantized) -> VariantMetrics:
        logits = self._predict(q.model)
        variant = VariantMetrics(
            variant=name,
            status="ok",
            precision="int8",
            accuracy=self._accuracy(logits, q.model, compare=True),
            conversion=q.conversion,
        )
        self._measure(q.model, variant, name)
        return variant

    # ------------------------------------------------------------ pieces
    def _stream(self, optim: OptimSpec, purpose: str) -> TrainStream:
        return TrainStream(
            self.data.train_images,
            self.data.train_labels,
            batch_size=optim.batch_size,
            seed=self.spec.seed,
            augment=self.spec.data.augment,
            purpose=purpose,
        )

    def _train(self, model, optim: OptimSpec, purpose: str):
        stream = self._stream(optim, purpose)
        steps = len(stream)
        if steps == 0:
            raise ValueError(
                f"{purpose}: batch_size {optim.batch_size} exceeds the "
                f"{len(self.data.train_images)} training images"
            )
        with self._memory("training"):
            return self._train_loop(model, optim, purpose, stream, steps)

    def _train_loop(self, model, optim: OptimSpec, purpose: str, stream, steps: int):
        trainer = self.fw.trainer(model, optim)
        epoch_s, losses, accs = [], [], []
        t_start = time.perf_counter()
        for epoch in range(optim.epochs):
            t0 = time.perf_counter()
            for i, batch in enumerate(stream.epoch(epoch)):
                trainer.step(batch.images, batch.labels, lr_at(optim, epoch, i, steps))
            loss, acc = trainer.end_epoch()
            epoch_s.append(time.perf_counter() - t0)
            losses.append(loss)
            accs.append(acc)
            events.emit(
                "epoch",
                phase=purpose,
                epoch=epoch + 1,
                epochs=optim.epochs,
                loss=loss,
                accuracy=acc,
                images_per_s=steps * optim.batch_size / epoch_s[-1],
            )
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"{purpose} training diverged (loss {loss}) in epoch "
                    f"{epoch + 1}; lower the learning rate or add warm-up"
                )
        wall = time.perf_counter() - t_start
        images = steps * optim.batch_size * optim.epochs
        stats = TrainingStats(
            device=self.device.train_device,
            threads=self.threads,
            epochs=optim.epochs,
            wall_s=wall,
            epoch_s=epoch_s,
            images=images,
            images_per_s=images / wall if wall > 0 else 0.0,
            loss=losses,
            train_accuracy=accs,
        )
        return model, stats

    def _predict(self, model) -> np.ndarray:
        batches = eval_batches(
            self.data.test_images, self.data.test_labels, self.spec.measure.eval_batch_size
        )
        with self._memory("inference"):
            return np.concatenate([self.fw.predict(model, b.images) for b in batches])

    def _accuracy(self, logits: np.ndarray, model, compare: bool) -> AccuracyStats:
        predictions = logits.argmax(1)
        agreement = None
        if compare and getattr(self, "fp32_predictions", None) is not None:
            agreement = float((predictions == self.fp32_predictions).mean())
        return AccuracyStats(
            top1=float((predictions == self.data.test_labels).mean()),
            n=len(predictions),
            device=self.fw.device_of(model),
            agreement_with_fp32=agreement,
        )

    def _measure(self, model, variant: VariantMetrics, stem: str) -> None:
        variant.size = self.fw.save(model, self.artifacts, stem)
        rule = self.spec.measure.latency
        thread_counts = [self.threads]
        if rule.thread_sweep and self.threads > 1:
            thread_counts.append(1)
        for threads in thread_counts:
            try:
                with self._threads(model, threads), self._memory("inference"):
                    for bs in rule.batch_sizes:
                        variant.latency.append(self._latency(model, stem, bs, threads))
            except ThreadsUnsupported as exc:
                variant.notes.append(f"no latency at {threads} thread(s): {exc.one_line()}")

    def _threads(self, model, threads: int):
        if threads == self.threads:
            return contextlib.nullcontext()
        return self.fw.threads_for(model, threads)

    def _latency(self, model, stem: str, bs: int, threads: int) -> LatencyStats:
        images = np.resize(self.data.test_images, (bs, 32, 32, 3))
        call, device = self.fw.latency_call(model, images)
        run = measure_latency(
            call, self.spec.measure.latency, batch_size=bs, device=device, threads=threads
        )
        suffix = "" if threads == self.threads else f"-t{threads}"
        samples = self.artifacts / f"latency-{stem}-b{bs}{suffix}.npy"
        np.save(samples, run.samples_ms)
        events.emit(
            "latency",
            phase=stem,
            batch_size=bs,
            threads=threads,
            p50_ms=run.stats.p50_ms,
            device=device,
        )
        return run.stats.model_copy(update={"samples_file": str(samples.relative_to(self.out_dir))})

    # ------------------------------------------------------------ profiling
    def _profile(self, phase: str, model, fp32=None) -> None:
        """Short profiler passes after a phase's timed work: training steps on a fresh
        copy (baseline, QAT) and the phase model's forward pass. A failing or missing
        profiler never fails the phase; the reason is recorded instead."""
        spec = self.spec.measure.profile
        variant = self.metrics.variants.get(phase)
        if not spec.enabled or model is None or variant is None or variant.status != "ok":
            return
        passes = []
        optim = {"baseline": self.spec.train, "qat": self.spec.qat}.get(phase)
        if spec.train and optim is not None and optim.epochs > 0:
            passes.append(("train", optim.batch_size, lambda: self._train_work(phase, fp32, optim)))
        if spec.inference:
            passes.append(
                ("inference", spec.inference_batch_size, lambda: self._inference_work(model))
            )
        for kind, batch_size, prepare in passes:
            events.emit("profile", phase=phase, trace=kind, state="start")
            stats = self._profile_pass(phase, kind, batch_size, prepare)
            variant.profiles.append(stats)
            self._save()
            events.emit("profile", phase=phase, trace=kind, state=stats.status)

    def _profile_pass(self, phase: str, kind: str, batch_size: int, prepare) -> ProfileStats:
        spec = self.spec.measure.profile
        trace_dir = self.out_dir / "traces"
        trace_dir.mkdir(exist_ok=True)
        base = dict(kind=kind, threads=self.threads, steps=spec.active, batch_size=batch_size)
        try:
            target, work, input_us = prepare()
            capture = self.fw.profile(target, work, spec, trace_dir, f"{phase}-{kind}")
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a profiler problem must never cost the study
            if isinstance(exc, ProfilerUnavailable):
                status, reason = "unavailable", exc.one_line()
            else:
                log.error("profiling %s %s failed:\n%s", phase, kind, traceback.format_exc())
                status, reason = "failed", _reason(exc)
            return ProfileStats(
                status=status, reason=reason, device=self.device.train_device, **base
            )
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
            trace=str(trace.relative_to(self.out_dir)) if trace else None,
            viewer=capture.viewer,
            trace_bytes=size_on_disk(trace) if trace else None,
            total_us=totals,
            breakdown=breakdown,
            top_ops=top_ops,
            notes=capture.notes,
            **base,
        )

    def _train_work(self, phase: str, fp32, optim: OptimSpec):
        """Training steps on a fresh copy, so profiling never changes the study's models."""
        spec = self.spec.measure.profile
        if phase == "baseline":
            model = self.fw.build(self._start_weights())
        else:
            model = self.fw.prepare_qat(fp32)
        trainer = self.fw.trainer(model, optim)
        stream = self._stream(optim, phase)  # the same first batches the phase trained on
        if len(stream) == 0:
            raise ValueError(f"batch_size {optim.batch_size} exceeds the training images")
        steps, first_active = len(stream), spec.wait + spec.warmup
        batches = _cycle(stream)
        input_us: list[float] = []

        def work(i: int) -> None:
            t0 = time.perf_counter()
            with self.fw.region("harness::input"):
                batch = next(batches)
            if i >= first_active:
                input_us.append((time.perf_counter() - t0) * 1e6)
            trainer.step(batch.images, batch.labels, lr_at(optim, 0, i % steps, steps))
            if i == spec.steps - 1:
                trainer.end_epoch()  # waits for the device, so the last step is recorded whole

        return model, work, input_us

    def _inference_work(self, model):
        bs = self.spec.measure.profile.inference_batch_size
        images = np.resize(self.data.test_images, (bs, 32, 32, 3))
        call, _ = self.fw.latency_call(model, images)
        return model, (lambda i: call()), []

    # ------------------------------------------------------------ bookkeeping
    def _new_metrics(self, device: DeviceInfo, threads: int) -> MetricsFile:
        d = self.data
        return MetricsFile(
            framework=self.fw.name,
            status="running",
            run_id=self.run_id,
            spec_name=self.spec.name,
            spec_digest=self.spec.digest(),
            seed=self.spec.seed,
            started_at=now_iso(),
            updated_at=now_iso(),
            provenance=Provenance(
                harness_version=__version__,
                framework_versions=self.fw.versions(),
                python=system.python_version(),
                platform=system.platform_string(),
                hostname=system.hostname(),
                uid=os.getuid() if hasattr(os, "getuid") else None,
                network_interfaces=system.network_interfaces(),
                runtime=self.runtime,
                cpu_model=system.cpu_model(),
                cpu_flags=system.cpu_flags(),
                cpu_count=system.usable_cpus(),
                threads=threads,
                device=device.train_device + (f" ({device.gpu})" if device.gpu else ""),
                gpu=device.gpu,
                cuda=device.cuda,
                cudnn=device.cudnn,
                gpu_driver=system.gpu_driver() if device.gpu else None,
            ),
            dataset=DatasetInfo(
                path=str(d.root),
                kind=d.kind,
                train_images=len(d.train_labels),
                test_images=len(d.test_labels),
                digest=d.digest,
            ),
        )

    def _save(self) -> None:
        write_metrics(self.metrics_path, self.metrics)


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _cycle(stream: TrainStream):
    """Batches from epoch 0 on, into the next epochs when a profile outlasts one."""
    epoch = 0
    while True:
        yield from stream.epoch(epoch)
        epoch += 1


def _reason(exc: BaseException) -> str:
    """An exception as one short line for metrics.json (the traceback goes to the log)."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
