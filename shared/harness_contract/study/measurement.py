"""What is measured of every model, identically for every framework: accuracy on the
test split, size on disk with the digest of every saved model file, and latency at each
batch size and thread count (with the raw per-call samples kept beside metrics.json)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness_contract import events
from harness_contract.data.cifar import Cifar10
from harness_contract.data.stream import eval_batches
from harness_contract.fs.atomic import write_npy_atomic
from harness_contract.fs.digests import artifact_digests
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import RungMetrics, VariantMetrics
from harness_contract.metrics.figures import (
    AccuracyStats,
    ArtifactDigest,
    LatencyStats,
    RepeatCheck,
)
from harness_contract.spec import LatencySpec, MeasureSpec
from harness_contract.study.framework import Framework, Saved, ThreadsUnsupported
from harness_contract.study.latency import LatencyRun, measure_latency

Part = Callable[[], contextlib.AbstractContextManager[None]]


def latency_images(data: Cifar10, batch_size: int) -> np.ndarray:
    """The images a latency or profiling batch is made of: test images, repeated as needed."""
    return np.resize(data.test_images, (batch_size, 32, 32, 3))


def time_forward(
    fw: Framework, model: Any, images: np.ndarray, rule: LatencySpec, threads: int
) -> LatencyRun:
    """The shared latency method on this model's forward pass over prepared ``images``."""
    call, device = fw.latency_call(model, images)
    return measure_latency(call, rule, batch_size=len(images), device=device, threads=threads)


def accuracy(
    logits: np.ndarray,
    labels: np.ndarray,
    device: str,
    fp32_predictions: np.ndarray | None = None,
) -> AccuracyStats:
    """Top-1 of ``logits`` against ``labels``; with fp32's predictions, how often they agree
    and the images only one of the two gets right (the host's McNemar test)."""
    predictions = logits.argmax(1)
    correct = predictions == labels
    agreement = only_this = only_fp32 = None
    if fp32_predictions is not None:
        agreement = float((predictions == fp32_predictions).mean())
        fp32_correct = fp32_predictions == labels
        only_this = int((correct & ~fp32_correct).sum())
        only_fp32 = int((fp32_correct & ~correct).sum())
    return AccuracyStats(
        top1=float(correct.mean()),
        n=len(predictions),
        device=device,
        agreement_with_fp32=agreement,
        only_this_correct=only_this,
        only_fp32_correct=only_fp32,
    )


def repeat_check(
    fw: Framework, model: Any, images: np.ndarray, first: np.ndarray, threads: int
) -> RepeatCheck:
    """``images`` predicted again and compared with ``first``, their logits from the
    evaluation: identical calls that differ make top-1 one draw, not a property of the model."""
    again = fw.predict(model, images)
    return RepeatCheck(
        images=len(images),
        threads=threads,
        max_abs_diff=float(np.max(np.abs(again.astype(np.float64) - first), initial=0.0)),
        changed_predictions=int((again.argmax(1) != first.argmax(1)).sum()),
    )


@dataclass
class Measurement:
    """Accuracy, size and latency of the study's models, written under ``out``.

    ``threads`` is the run's own thread count: latency is taken there first and, with
    ``measure.latency.thread_sweep``, again at 1 thread. ``part`` wraps every inference
    (the phase's memory accounting for "inference").
    """

    fw: Framework
    data: Cifar10
    spec: MeasureSpec
    out: FrameworkDir
    threads: int
    part: Part = field(default=contextlib.nullcontext)

    def predict(self, model: Any) -> np.ndarray:
        """Logits over the whole test split, in file order."""
        batches = eval_batches(
            self.data.test_images, self.data.test_labels, self.spec.eval_batch_size
        )
        with self.part():
            return np.concatenate([self.fw.predict(model, b.images) for b in batches])

    def accuracy(
        self,
        model: Any,
        fp32_predictions: np.ndarray | None = None,
        logits: np.ndarray | None = None,
    ) -> AccuracyStats:
        """Top-1 over the test split (``logits``: already predicted), with the first
        evaluation batch run again to show whether the figure repeats."""
        if logits is None:
            logits = self.predict(model)
        stats = accuracy(logits, self.data.test_labels, self.fw.device_of(model), fp32_predictions)
        first = self.data.test_images[: self.spec.eval_batch_size]
        with self.part():
            stats.repeat = repeat_check(self.fw, model, first, logits[: len(first)], self.threads)
        return stats

    def measure(
        self,
        model: Any,
        variant: VariantMetrics | RungMetrics,
        stem: str,
        per_batch: Mapping[int, Any] | None = None,
    ) -> None:
        """Size on disk and the digest of every file saved (the model as
        ``artifacts/<stem>.*``), then latency at every batch size: at the run's threads,
        then at 1 thread where the sweep asks for it. A thread count the framework cannot
        switch to leaves a note instead of rows. ``per_batch``: the model made for one
        batch size alone (``Lowered.for_batch``), timed at that batch instead of ``model``."""
        self.out.artifacts.mkdir(parents=True, exist_ok=True)
        saved = self.fw.save(model, self.out.artifacts, stem)
        variant.size = saved.size
        variant.artifacts = self.digests(saved)
        rule = self.spec.latency
        thread_counts = [self.threads]
        if rule.thread_sweep and self.threads > 1:
            thread_counts.append(1)
        for threads in thread_counts:
            try:
                with self._threads(model, threads), self.part():
                    for bs in rule.batch_sizes:
                        timed = (per_batch or {}).get(bs, model)
                        variant.latency.append(self.latency(timed, stem, bs, threads))
            except ThreadsUnsupported as exc:
                variant.notes.append(f"no latency at {threads} thread(s): {exc.one_line()}")

    def digests(self, saved: Saved) -> list[ArtifactDigest]:
        """The saved files' digests; the file the size figure names must be among them."""
        digests = artifact_digests(saved.files, self.out.path)
        named = saved.size.file
        if named is not None and self.out.relative(self.out.artifacts / named) not in {
            d.file for d in digests
        }:  # a runner bug: its size names a file it did not declare
            raise RuntimeError(f"{self.fw.name}.save did not list its own file {named}")
        return digests

    def latency(self, model: Any, stem: str, batch_size: int, threads: int) -> LatencyStats:
        """One latency row; its raw samples are saved as artifacts/latency-<stem>-b<bs>.npy
        (``-t<threads>`` added away from the run's own thread count)."""
        run = time_forward(
            self.fw, model, latency_images(self.data, batch_size), self.spec.latency, threads
        )
        suffix = "" if threads == self.threads else f"-t{threads}"
        samples = self.out.artifacts / f"latency-{stem}-b{batch_size}{suffix}.npy"
        write_npy_atomic(samples, run.samples_ms)  # never a partial .npy (disk full)
        events.emit(
            "latency",
            phase=stem,
            batch_size=batch_size,
            threads=threads,
            p50_ms=run.stats.p50_ms,
            device=run.stats.device,
        )
        return run.stats.model_copy(update={"samples_file": self.out.relative(samples)})

    def _threads(self, model: Any, threads: int) -> contextlib.AbstractContextManager[None]:
        if threads == self.threads:
            return contextlib.nullcontext()
        return self.fw.threads_for(model, threads)
