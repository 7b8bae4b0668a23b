"""The per-layer analysis phase, framework-neutral: where an int8 variant loses accuracy,
layer by layer, and what keeping layers in float buys back.

Each runner supplies a ``LayerProbe`` (harness_contract.layers.probe) that returns every
measuring point's fp32 and dequantized int8 outputs on the same images; the SQNR/MSE
formula, the ranking and the what-if measurement (harness_contract.layers.what_if) live here
so both frameworks are judged the same way. Nothing raises out of ``analyse``: a probe
the installed versions cannot run is recorded "unavailable", any other error "failed",
with the tool's message, and the study goes on.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness_contract.data.cifar import Cifar10
from harness_contract.failures import reason_of
from harness_contract.layers.error import (
    WORST,
    CanonicalLayer,
    LayerAnalysis,
    LayerError,
    measuring_points,
    rank,
)
from harness_contract.layers.probe import (  # re-exported for the runners and tests
    AnalysisUnavailable,
    Int8Outputs,
    LayerProbe,
    OwnErrors,
    RequantizeInputs,
    Sums,
)
from harness_contract.layers.what_if import WhatIfRunner
from harness_contract.model.network import network
from harness_contract.spec import ExperimentSpec
from harness_contract.spec.analysis import AnalysisSpec
from harness_contract.study.framework import Framework

__all__ = [
    "Analysis",
    "AnalysisUnavailable",
    "Int8Outputs",
    "LayerProbe",
    "OwnErrors",
    "RequantizeInputs",
    "layer_analysis",
    "probe_of",
]

log = logging.getLogger("harness.analysis")

PROBE_BATCH = 64  # images per probing pass: bounds the memory the kept activations take
_Sums = Sums  # the name the tests know
# The pairs an Int8Outputs holds per layer; each fills LayerError's <part>_sqnr_db/_mse.
_PARTS = ("own", "weight", "output")


@dataclass
class Analysis:
    """One framework's analysis of its int8 variants (constructed once per study)."""

    fw: Framework
    probe: LayerProbe
    spec: ExperimentSpec
    analysis: AnalysisSpec
    data: Cifar10
    threads: int
    fp32_predictions: np.ndarray | None = None

    def images(self) -> np.ndarray:
        return self.data.test_images[: self.analysis.images]

    def analyse(
        self,
        variant: str,
        qmodel: Any,
        fp32: Any,
        inputs: RequantizeInputs,
        reference: Any = None,
    ) -> LayerAnalysis:
        """The variant's layers, ranking and what-if, never raising (failures are
        recorded). ``reference``: the float model the layer figures compare against when
        it is not ``fp32`` (QAT's fine-tuned float model); the what-if's agreement is
        always with fp32's predictions."""
        t0 = time.perf_counter()
        images = self.images()
        try:
            result = self._layers(variant, qmodel, fp32, images, inputs, reference)
        except AnalysisUnavailable as exc:
            result = LayerAnalysis(status="unavailable", reason=exc.one_line())
        except Exception as exc:  # a debugger error: this analysis only
            log.error("layer analysis of %s failed:\n%s", variant, traceback.format_exc())
            result = LayerAnalysis(status="failed", reason=reason_of(exc))
        result.images = len(images)
        result.seconds = time.perf_counter() - t0
        if result.status != "ok":
            return result
        runner = WhatIfRunner(
            self.fw, self.probe, self.spec, self.data, self.threads, self.fp32_predictions
        )
        what_if = bool(self.analysis.keep_float) and variant in self.analysis.what_if_variants
        ranking = self.analysis.ranking
        if ranking == "sensitivity" and not what_if:
            # 21 requantizations (QAT: fine-tunings) only where a what-if uses the ranking
            ranking = "weight"
            result.notes.append(
                "sensitivity not measured: this variant gets no what-if "
                "(analysis.what_if_variants, analysis.keep_float); ranked by weight rounding"
            )
        if ranking == "sensitivity":
            self._sensitivity(result, runner, variant, fp32, images, inputs)
        result.ranking, key = rank(result.layers, ranking)
        result.ranked_by = key  # type: ignore[assignment]
        result.worst = result.ranking[:WORST]
        if what_if:
            t1 = time.perf_counter()
            ks = self._ks(len(result.ranking))
            result.what_if = runner.rows(variant, qmodel, fp32, result.ranking, ks, inputs)
            result.what_if_seconds = time.perf_counter() - t1
        return result

    def _sensitivity(
        self,
        result: LayerAnalysis,
        runner: WhatIfRunner,
        variant: str,
        fp32: Any,
        images: np.ndarray,
        inputs: RequantizeInputs,
    ) -> None:
        t0 = time.perf_counter()
        weighted = [x for x in result.layers if x.kind != "block" and x.sqnr_db is not None]
        try:
            figures = runner.sensitivity(variant, fp32, [x.layer for x in weighted], images, inputs)
        except Exception as exc:  # the ranking falls back; the analysis stands
            log.error("sensitivity of %s failed:\n%s", variant, traceback.format_exc())
            figures = {}
            result.notes.append(f"sensitivity failed: {reason_of(exc)}")
        for row in weighted:
            row.sensitivity_sqnr_db, agreement = figures.get(row.layer, (None, None))
            row.sensitivity_agreement = agreement
        result.sensitivity_seconds = time.perf_counter() - t0
        missing = [x.layer for x in weighted if x.sensitivity_sqnr_db is None]
        if missing:
            result.notes.append(
                "no sensitivity for " + ", ".join(missing) + ": ranked by the next figure"
            )

    def _layers(
        self,
        variant: str,
        qmodel: Any,
        fp32: Any,
        images: np.ndarray,
        inputs: RequantizeInputs,
        reference: Any,
    ) -> LayerAnalysis:
        points = measuring_points(network(self.spec.model))
        ref_model = fp32 if reference is None else reference
        sums = {part: {x.name: Sums() for x in points} for part in ("prop", "drift", *_PARTS)}
        last = Int8Outputs({})
        found: set[str] = set()
        unmapped: set[str] = set()
        for start in range(0, len(images), PROBE_BATCH):
            batch = images[start : start + PROBE_BATCH]
            ref = self.probe.fp32_layer_outputs(ref_model, batch)
            if reference is not None:  # the fine-tuning's drift, apart from quantization
                base = self.probe.fp32_layer_outputs(fp32, batch)
                for name in ref.keys() & base.keys():
                    sums["drift"][name].add(base[name], ref[name])
            last = self.probe.int8_layer_outputs(qmodel, ref_model, batch)
            unmapped.update(last.unmapped)
            found.update(last.outputs)
            for name, q in last.outputs.items():
                if name in ref:
                    sums["prop"][name].add(ref[name], q)
            for part in _PARTS:
                for name, (f, q) in getattr(last, part).items():
                    sums[part][name].add(f, q)
        given = self.probe.own_layer_error(variant, qmodel, ref_model, images, inputs)
        if given is not None:
            unmapped.update(given.unmapped)
        return LayerAnalysis(
            status="ok",
            method=last.method,
            own_method=given.method if given is not None else last.own_method,
            layers=self._rows(points, sums, last, given),
            unmapped=sorted(unmapped),
            reference="fp32" if reference is None else "qat_float",
            notes=self._missing(points, found),
        )

    @staticmethod
    def _missing(points: list[CanonicalLayer], found: set[str]) -> list[str]:
        notes = []
        layers = [x.name for x in points if x.kind != "block" and x.name not in found]
        if layers:
            notes.append(f"no int8 output found for: {', '.join(layers)}")
        blocks = [x.name for x in points if x.kind == "block" and x.name not in found]
        if blocks:
            notes.append(f"no block output found for: {', '.join(blocks)}")
        return notes

    @staticmethod
    def _rows(
        points: list[CanonicalLayer],
        sums: dict[str, dict[str, Sums]],
        last: Int8Outputs,
        given: OwnErrors | None,
    ) -> list[LayerError]:
        rows = []
        for point in points:
            name = point.name
            row = LayerError(
                layer=name,
                kind=point.kind,
                tool_name=last.tool_names.get(name),
                output_quantized=last.output_quantized.get(name),
            )
            if sums["prop"][name].n:
                row.sqnr_db, row.mse = sums["prop"][name].figures()
            for part in _PARTS:
                if sums[part][name].n:
                    sqnr, mse = sums[part][name].figures()
                    setattr(row, f"{part}_sqnr_db", sqnr)
                    setattr(row, f"{part}_mse", mse)
            if given is not None and name in given.figures:
                row.own_sqnr_db, row.own_mse = given.figures[name]
            if sums["drift"][name].n:
                row.drift_sqnr_db = sums["drift"][name].figures()[0]
            rows.append(row)
        return rows

    def _ks(self, ranked: int) -> list[int]:
        """The spec's k values, capped at the ranked layer count, without repeats."""
        out: list[int] = []
        for k in self.analysis.keep_float:
            k = min(k, ranked)
            if k >= 1 and k not in out:
                out.append(k)
        return out


def probe_of(fw: Framework) -> LayerProbe:
    """The runner's probe (``Framework.layer_probe()``), or AnalysisUnavailable."""
    factory = getattr(fw, "layer_probe", None)  # duck-typed test doubles may lack it
    probe = factory() if factory is not None else None
    if probe is None:
        raise AnalysisUnavailable(
            f"the {fw.name} runner has no per-layer probe", "analysis.enabled=false skips it"
        )
    return probe


def layer_analysis(
    fw: Framework,
    spec: ExperimentSpec,
    analysis: AnalysisSpec,
    phases: Any,
    variant: str,
    model: Any,
    fp32: Any,
    threads: int,
) -> LayerAnalysis:
    """The study's call: one int8 variant's analysis after its phase (``phases`` is the
    study's harness_contract.study.phases.Phases: data, fp32 predictions, QAT fine-tuning, and
    the fine-tuned QAT model before conversion, QAT's reference). Never raises: a runner
    without a probe is recorded "unavailable"."""
    from harness_contract.study.phases import calibration_batches

    try:
        probe = probe_of(fw)
    except AnalysisUnavailable as exc:
        return LayerAnalysis(status="unavailable", reason=exc.one_line())
    calibration = (
        calibration_batches(phases.data.train_images, spec.ptq, spec.seed)
        if spec.ptq.enabled
        else []
    )
    runner = Analysis(fw, probe, spec, analysis, phases.data, threads, phases.fp32_predictions)
    inputs = RequantizeInputs(calibration, phases.fine_tune)
    reference, note = _qat_reference(probe, variant, getattr(phases, "qat_trained", None), fp32)
    result = runner.analyse(variant, model, fp32, inputs, reference)
    if note:
        result.notes.append(note)
    return result


def _qat_reference(probe: LayerProbe, variant: str, trained: Any, fp32: Any) -> tuple[Any, str]:
    """QAT's fine-tuned float model (its per-layer reference), or None and why not."""
    if variant != "qat":
        return None, ""
    fallback = "QAT measured against the fp32 baseline (so its figures include the drift)"
    if trained is None:
        return None, f"{fallback}: the study kept no fine-tuned model"
    try:
        reference = probe.qat_float_model(trained, fp32)
    except Exception as exc:  # this reference only: the baseline still serves
        log.error("QAT float model failed:\n%s", traceback.format_exc())
        return None, f"{fallback}: {reason_of(exc)}"
    if reference is None:
        return None, f"{fallback}: the runner gives no float model of the fine-tuned weights"
    return reference, ""
