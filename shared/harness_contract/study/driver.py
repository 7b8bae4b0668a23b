"""The phase driver: baseline -> PTQ -> QAT in order, each followed by its profiler passes
and its runtime ladder (the same model on the framework's other runtimes); then the
support probes (what the installed versions can and cannot do).

metrics.json is rewritten after every phase and every profile pass, so a crash or Ctrl-C
keeps what was finished. A failing phase (NaN loss, out of memory, a conversion error,
too few calibration images) is recorded "failed" with its root cause and the study moves
on to whatever does not depend on it; the file then ends "complete", which the host
reads as "complete with failures". An error outside any phase ends the file "failed"
with its reason before it propagates; Ctrl-C ends it "interrupted". It is never left
"running" by a failure this process sees.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any, Literal

from harness_contract import events
from harness_contract.data.cifar import Cifar10
from harness_contract.failures import reason_of
from harness_contract.fs.atomic import full_disk_errno
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import ImageIdentity, MetricsFile, VariantMetrics, write_metrics
from harness_contract.metrics.census import OpCensus
from harness_contract.spec import ExperimentSpec, determinism_wanted
from harness_contract.study.framework import Framework, Unsupported
from harness_contract.study.ladder import Ladder
from harness_contract.study.measurement import Measurement
from harness_contract.study.memory import PhaseMemory
from harness_contract.study.phases import Phases
from harness_contract.study.profiling import Profiling
from harness_contract.study.provenance import new_metrics

log = logging.getLogger("harness.pipeline")

PhaseBody = Callable[[], tuple[Any, VariantMetrics]]


def _precision(phase: str) -> str:
    return "fp32" if phase == "baseline" else "int8"


class StudyDriver:
    """Runs one framework's study into ``out`` (metrics.json, artifacts/, traces/)."""

    def __init__(
        self,
        fw: Framework,
        spec: ExperimentSpec,
        data: Cifar10,
        out: FrameworkDir,
        run_id: str,
        runtime: str,
        image: ImageIdentity | None = None,
    ) -> None:
        self.fw, self.spec, self.data, self.out = fw, spec, data, out
        self.run_id, self.runtime, self.image = run_id, runtime, image
        self.out.artifacts.mkdir(parents=True, exist_ok=True)
        self.memory = PhaseMemory(fw)
        self.metrics: MetricsFile | None = None

    def run(self, threads: int) -> MetricsFile:
        device = self.fw.setup(self.spec, threads)
        # Before any model exists: the switches decide how it is built and trained.
        switches = self.fw.determinism(determinism_wanted(self.spec, device.train_device))
        self.metrics = new_metrics(
            self.fw,
            self.spec,
            self.data,
            self.run_id,
            self.runtime,
            device,
            threads,
            image=self.image,
            determinism=switches,
        )
        self.save()
        measurement = Measurement(
            self.fw,
            self.data,
            self.spec.measure,
            self.out,
            threads,
            part=lambda: self.memory.part("inference"),
        )
        self.phases = Phases(
            self.fw, self.spec, self.data, device, threads, measurement, self.memory
        )
        self.profiling = Profiling(
            self.fw, self.spec, self.data, self.out, device.train_device, threads
        )
        self.ladder = Ladder(self.fw, self.spec, self.phases, measurement)
        events.emit("start", framework=self.fw.name, device=device.train_device, threads=threads)
        try:
            self._phases()
        except KeyboardInterrupt:
            self._end("interrupted", "interrupted before the study finished")
            raise
        except BaseException as exc:  # a bug or an OS error outside any phase
            log.error("the study stopped:\n%s", traceback.format_exc())
            self._end("failed", reason_of(exc))
            raise
        self.metrics.status = "complete"
        self.save()
        events.emit("done", framework=self.fw.name, status="complete")
        return self.metrics

    def _phases(self) -> None:
        fp32 = self.phase("baseline", self.phases.baseline)
        self.profile("baseline", fp32)
        self.climb("baseline", fp32, fp32)
        for name, enabled, body in (
            ("ptq", self.spec.ptq.enabled, self.phases.ptq),
            ("qat", self.spec.qat.enabled, self.phases.qat),
        ):
            if not enabled:
                self.skip(name, f"disabled in the spec ({name}.enabled = false)")
            elif fp32 is None:
                self.skip(name, "the baseline phase failed, so there is no fp32 model")
            else:
                model = self.phase(name, lambda body=body: body(fp32))
                self.profile(name, model, fp32)
                self.climb(name, model, fp32)
                self.analyse(name, model, fp32)
        self.probe_support()

    def phase(self, name: str, body: PhaseBody) -> Any:
        """Run one phase; its model, or None when it failed (recorded with the reason)."""
        metrics = self._metrics()
        events.emit("phase", phase=name, state="start")
        try:
            with self.memory.phase():
                model, variant = body()
            variant.memory = self.memory.stats()
            variant.notes += self.fw.variant_notes(name, self.phases.device)
        except (KeyboardInterrupt, SystemExit):
            self._record_start_weights()
            raise
        except Unsupported as exc:
            log.warning("phase %s unsupported: %s", name, exc.reason)
            self._record_start_weights()
            self._unfinished(name, "unsupported", exc.reason)
            return None
        except Exception as exc:  # one phase's failure must not lose the others
            log.error("phase %s failed:\n%s", name, traceback.format_exc())
            self._record_start_weights()
            self._unfinished(name, "failed", reason_of(exc))
            if full_disk_errno(exc) is not None:
                raise  # every later write would fail too: the study stops, naming the file
            return None
        variant.ops = self._census(name, model)
        metrics.variants[name] = variant
        self._record_start_weights()
        self.save()
        events.emit(
            "phase",
            phase=name,
            state="done",
            accuracy=variant.accuracy.top1 if variant.accuracy else None,
        )
        return model

    def _census(self, name: str, model: Any) -> OpCensus | None:
        """The model's ops by family; a census that fails is logged, never the phase's end."""
        try:
            return self.fw.op_census(model)
        except Exception:
            log.error("op census of %s failed:\n%s", name, traceback.format_exc())
            return None

    def skip(self, name: str, reason: str) -> None:
        self._unfinished(name, "skipped", reason)

    def _unfinished(
        self, name: str, status: Literal["failed", "unsupported", "skipped"], reason: str
    ) -> None:
        """A phase that left no model (failed, unsupported, skipped), saved and announced."""
        self._metrics().variants[name] = VariantMetrics(
            variant=name,
            status=status,
            precision=_precision(name),
            reason=reason,
        )
        self.save()
        events.emit("phase", phase=name, state=status, reason=reason)

    def profile(self, phase: str, model: Any, fp32: Any = None) -> None:
        """The phase's profiler passes, each saved as soon as it is done (none after a
        failed phase)."""
        variant = self._metrics().variants.get(phase)
        if model is None or variant is None or variant.status != "ok":
            return
        for stats in self.profiling.run(phase, model, fp32):
            variant.profiles.append(stats)
            self.save()

    def climb(self, phase: str, model: Any, fp32: Any) -> None:
        """The phase's runtime rungs (none after a failed phase)."""
        variant = self._metrics().variants.get(phase)
        if model is None or variant is None or variant.status != "ok":
            return
        self.ladder.climb(phase, variant, model, fp32, self.save)

    def analyse(self, phase: str, model: Any, fp32: Any) -> None:
        """Where the int8 variant loses accuracy, layer by layer, and what keeping its worst
        layers in float buys back (never raises: a failure is recorded in the variant)."""
        variant = self._metrics().variants.get(phase)
        if model is None or variant is None or variant.status != "ok":
            return
        if not self.spec.analysis.enabled:
            return
        from harness_contract.layers.analysis import layer_analysis

        events.emit("analysis", phase=phase, state="start")
        variant.layers = layer_analysis(
            self.fw,
            self.spec,
            self.spec.analysis,
            self.phases,
            phase,
            model,
            fp32,
            self.phases.threads,
        )
        self.save()
        events.emit("analysis", phase=phase, state=variant.layers.status)

    def probe_support(self) -> None:
        """Each capability of the paper's Table IV, probed in a child process with a bound
        per probe: it never fails the study (a probe that fails is an answer)."""
        if not self.spec.support.enabled:
            return
        from harness_contract.study.support import probe_support

        events.emit("support", state="start")
        self._metrics().support = probe_support(self.fw, self.spec.support, self.out)
        self.save()
        events.emit("support", state="done")

    def save(self) -> None:
        write_metrics(self.out.metrics, self._metrics())

    def _record_start_weights(self) -> None:
        if self.phases.weights_label is not None:
            self._metrics().initial_weights = self.phases.weights_label

    def _end(self, status: str, error: str) -> None:
        """Best effort: the write itself may be what failed (disk full, read-only)."""
        metrics = self._metrics()
        metrics.status = status  # type: ignore[assignment]
        metrics.error = error
        try:
            self.save()
        except Exception:  # noqa: BLE001 - the original error is the one to raise
            log.error("could not record status %r in %s", status, self.out.metrics)

    def _metrics(self) -> MetricsFile:
        if self.metrics is None:
            raise RuntimeError("the study has not started: call run() first")
        return self.metrics
