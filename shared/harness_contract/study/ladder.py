"""The runtime ladder of one variant: the same model on each of the framework's other
deployable runtimes (harness_contract.runtimes), measured exactly as the variant itself
(accuracy and agreement with the reference fp32, size with digests, latency at every
batch size and thread count). Latency at each batch size is taken on the model a user
serving that batch builds (``Lowered.for_batch``: Inductor compiles static shapes per
batch), so a rung is as fast as its runtime; accuracy then runs on the largest batch's
model, so it belongs to a model that was timed. A rung that cannot run here is recorded
with its reason, one that fails with the tool's own message; neither stops the study.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness_contract import events
from harness_contract.failures import reason_of
from harness_contract.metrics import RungMetrics, VariantMetrics
from harness_contract.runtimes import primary
from harness_contract.spec import ExperimentSpec
from harness_contract.study.framework import Framework, Lowered, RungInputs, RungUnavailable
from harness_contract.study.measurement import Measurement
from harness_contract.study.phases import Phases, calibration_batches

log = logging.getLogger("harness.ladder")


def per_batch_models(
    lowered: Lowered, batch_sizes: Sequence[int]
) -> tuple[dict[int, Any], dict[int, float]]:
    """The model made for each latency batch size alone and its seconds (both empty when
    the lowered model serves every batch as its runtime would). Made before any timing,
    at the run's thread count, once per batch: every thread count reuses it."""
    models: dict[int, Any] = {}
    seconds: dict[int, float] = {}
    if lowered.for_batch is not None:
        for bs in dict.fromkeys(batch_sizes):
            models[bs], seconds[bs] = lowered.for_batch(bs)
    return models, seconds


def wanted_runtimes(spec: ExperimentSpec, framework: str) -> list[str]:
    """The rungs the spec asks for: ``<framework>.runtimes`` (none for a framework without
    a section of its own)."""
    section = getattr(spec, framework, None)
    return list(getattr(section, "runtimes", []))


@dataclass
class Ladder:
    fw: Framework
    spec: ExperimentSpec
    phases: Phases
    measurement: Measurement

    def climb(
        self, name: str, variant: VariantMetrics, model: Any, fp32: Any, save: Callable[[], None]
    ) -> None:
        """Every rung of ``variant`` in ladder order, each saved as soon as it is done."""
        variant.runtime = primary(self.fw.name, name)
        wanted = wanted_runtimes(self.spec, self.fw.name)
        variants = self.spec.measure.rung_variants
        for slug in self.fw.rungs(name):
            if slug in wanted and name in variants:
                rung = self.rung(name, slug, model, fp32)
            else:
                why = (
                    f"{self.fw.name}.runtimes = {wanted}"
                    if slug not in wanted
                    else f"measure.rung_variants = {variants}"
                )
                rung = RungMetrics(
                    runtime=slug,
                    precision=variant.precision,
                    status="skipped",
                    reason=f"not asked for ({why})",
                )
            variant.rungs.append(rung)
            save()
            events.emit("rung", phase=name, runtime=slug, state=rung.status, reason=rung.reason)

    def rung(self, name: str, slug: str, model: Any, fp32: Any) -> RungMetrics:
        precision = "fp32" if name == "baseline" else "int8"
        rung = RungMetrics(runtime=slug, precision=precision, status="ok")
        events.emit("rung", phase=name, runtime=slug, state="start")
        try:
            lowered = self.fw.lower(slug, self.inputs(name, model, fp32))
        except RungUnavailable as exc:
            return rung.model_copy(update={"status": "unavailable", "reason": exc.one_line()})
        except Exception as exc:  # a compiler or converter error: this rung only
            log.error("rung %s/%s failed:\n%s", name, slug, traceback.format_exc())
            return rung.model_copy(update={"status": "failed", "reason": reason_of(exc)})
        self._record(rung, lowered)
        try:
            per_batch, seconds = per_batch_models(lowered, self.spec.measure.latency.batch_sizes)
            rung.compile_s_by_batch = seconds or None
            served = lowered.model
            if per_batch:  # accuracy on a model that is timed: the largest batch's
                largest = max(per_batch)
                served = per_batch[largest]
                if rung.compile_s is None:  # a runtime that compiles only per batch
                    rung.compile_s = seconds[largest]
            rung.accuracy = self.measurement.accuracy(served, self.phases.fp32_predictions)
            self.measurement.measure(lowered.model, rung, f"{name}-{slug}", per_batch)
        except Exception as exc:  # it compiled but does not run: keep what was measured
            log.error("rung %s/%s failed:\n%s", name, slug, traceback.format_exc())
            rung.status, rung.reason = "failed", reason_of(exc)
        return rung

    @staticmethod
    def _record(rung: RungMetrics, lowered: Lowered) -> None:
        rung.compile_s = lowered.compile_s
        rung.conversion, rung.training = lowered.conversion, lowered.training
        rung.notes += lowered.notes
        rung.ops = lowered.ops

    def inputs(self, name: str, model: Any, fp32: Any) -> RungInputs:
        spec = self.spec
        needs_calibration = name == "ptq" and spec.ptq.enabled
        calibration = (
            calibration_batches(self.phases.data.train_images, spec.ptq, spec.seed)
            if needs_calibration
            else []
        )
        # Every batch the lowered model meets: evaluation, latency, and the calibration
        # batches a runtime with its own quantizer runs through its prepared model.
        latency = [*spec.measure.latency.batch_sizes, spec.ptq.calibration_batch_size]
        return RungInputs(
            variant=name,
            model=model,
            fp32=fp32,
            calibration=calibration,
            fine_tune=self.phases.fine_tune,
            max_batch=max([spec.measure.eval_batch_size, *latency]),
        )
