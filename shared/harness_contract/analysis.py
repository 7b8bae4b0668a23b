"""The per-layer analysis phase, framework-neutral: where an int8 variant loses accuracy,
layer by layer, and what keeping its worst layers in float buys back.

Each runner supplies a ``LayerProbe`` (its numeric debugger, or a direct reading of its
graph) that returns every canonical layer's fp32 and dequantized int8 outputs on the
same images; the SQNR/MSE formula, the ranking and the what-if measurement live here so
both frameworks are judged the same way. Nothing raises out of ``analyse``: a probe the
installed versions cannot run is recorded "unavailable", any other error "failed", with
the tool's message, and the study goes on.
"""

from __future__ import annotations

import logging
import tempfile
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .architecture import resnet18
from .cifar import Cifar10
from .errors import HarnessError
from .failures import reason_of
from .framework import Framework
from .layer_error import (
    WORST,
    CanonicalLayer,
    LayerAnalysis,
    LayerError,
    WhatIf,
    canonical_layers,
    rank,
)
from .measurement import accuracy, latency_images, time_forward
from .metrics import TrainingStats
from .spec import ExperimentSpec
from .spec_analysis import AnalysisSpec
from .stream import eval_batches

log = logging.getLogger("harness.analysis")

PROBE_BATCH = 64  # images per probing pass: bounds the memory the kept activations take


class AnalysisUnavailable(HarnessError):
    """This framework's tools cannot analyse this model here; says why (the tool's message)."""


@dataclass
class Int8Outputs:
    """One batch through the int8 model: each canonical layer's dequantized output, and
    where the method gives it, the layer's own error as (float output, int8 output) on the
    same input."""

    outputs: dict[str, np.ndarray]
    own: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    tool_names: dict[str, str] = field(default_factory=dict)  # canonical -> framework name
    # canonical -> whether the int8 model rounds this layer's output to int8 itself (PT2E
    # leaves conv2 and fc outputs in float where it fuses them into the next op); absent:
    # not known
    output_quantized: dict[str, bool] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)  # framework names no layer took
    method: str = ""
    own_method: str | None = None


@dataclass
class OwnErrors:
    """Own error per canonical layer from a tool that computes it itself (TF's debugger)."""

    figures: dict[str, tuple[float | None, float]]  # canonical -> (own_sqnr_db, own_mse)
    method: str
    unmapped: list[str] = field(default_factory=list)


class LayerProbe(ABC):
    """What a runner implements for the analysis (images are uint8 NHWC)."""

    @abstractmethod
    def fp32_layer_outputs(self, fp32: Any, images: np.ndarray) -> dict[str, np.ndarray]:
        """Each canonical layer's fp32 output (at the point layer_error describes)."""

    @abstractmethod
    def int8_layer_outputs(self, qmodel: Any, fp32: Any, images: np.ndarray) -> Int8Outputs:
        """Each canonical layer's dequantized int8 output on the same images."""

    def own_layer_error(
        self, variant: str, qmodel: Any, fp32: Any, images: np.ndarray, inputs: RequantizeInputs
    ) -> OwnErrors | None:
        """Own error from the framework's own debugger, where it has one; None: not given
        (or given by ``int8_layer_outputs``)."""
        return None

    @abstractmethod
    def requantize_keeping_float(
        self, variant: str, fp32: Any, float_layers: Sequence[str], inputs: RequantizeInputs
    ) -> Any:
        """The variant made again (same calibration, or the same QAT fine-tuning) with
        ``float_layers`` (canonical names) left in float; runs through the runner's
        predict, latency_call and save like any int8 model."""


@dataclass(frozen=True)
class RequantizeInputs:
    calibration: Sequence[np.ndarray]  # the shared PTQ calibration batches, uint8 NHWC
    fine_tune: Callable[[Any], tuple[Any, TrainingStats | None]]  # the study's QAT fine-tuning


class _Sums:
    """Running sums for the shared formula, so batches need not be kept."""

    def __init__(self) -> None:
        self.signal = self.noise = 0.0
        self.n = 0

    def add(self, ref: np.ndarray, q: np.ndarray) -> None:
        ref64, q64 = np.asarray(ref, np.float64), np.asarray(q, np.float64)
        if ref64.shape != q64.shape:
            raise ValueError(f"fp32 output {ref64.shape} and int8 output {q64.shape} differ")
        diff = ref64 - q64
        self.signal += float(np.sum(ref64 * ref64))
        self.noise += float(np.sum(diff * diff))
        self.n += ref64.size

    def figures(self) -> tuple[float | None, float]:
        sqnr = None
        if self.signal > 0 and self.noise > 0:
            sqnr = float(10 * np.log10(self.signal / self.noise))
        return sqnr, self.noise / self.n if self.n else 0.0


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
        self, variant: str, qmodel: Any, fp32: Any, inputs: RequantizeInputs
    ) -> LayerAnalysis:
        """The variant's layers and what-if, never raising (failures are recorded)."""
        t0 = time.perf_counter()
        images = self.images()
        try:
            result = self._layers(variant, qmodel, fp32, images, inputs)
        except AnalysisUnavailable as exc:
            result = LayerAnalysis(status="unavailable", reason=exc.one_line())
        except Exception as exc:  # a debugger error: this analysis only
            log.error("layer analysis of %s failed:\n%s", variant, traceback.format_exc())
            result = LayerAnalysis(status="failed", reason=reason_of(exc))
        result.images = len(images)
        result.seconds = time.perf_counter() - t0
        wanted = self.analysis.keep_float and variant in self.analysis.what_if_variants
        if result.status == "ok" and wanted:
            t1 = time.perf_counter()
            result.what_if = [
                self.what_if(variant, fp32, k, result.worst, inputs)
                for k in self._ks(len(result.worst))
            ]
            result.what_if_seconds = time.perf_counter() - t1
        return result

    def _layers(
        self,
        variant: str,
        qmodel: Any,
        fp32: Any,
        images: np.ndarray,
        inputs: RequantizeInputs,
    ) -> LayerAnalysis:
        layers = canonical_layers(resnet18(self.spec.model))
        sums = {x.name: _Sums() for x in layers}
        own = {x.name: _Sums() for x in layers}
        last = Int8Outputs({})
        unmapped: set[str] = set()
        for start in range(0, len(images), PROBE_BATCH):
            batch = images[start : start + PROBE_BATCH]
            ref = self.probe.fp32_layer_outputs(fp32, batch)
            last = self.probe.int8_layer_outputs(qmodel, fp32, batch)
            unmapped.update(last.unmapped)
            for name, q in last.outputs.items():
                if name in ref:
                    sums[name].add(ref[name], q)
            for name, (f, q) in last.own.items():
                own[name].add(f, q)
        given = self.probe.own_layer_error(variant, qmodel, fp32, images, inputs)
        rows = self._rows(layers, sums, own, last, given)
        missing = [x.name for x in layers if x.name not in last.outputs]
        if given is not None:
            unmapped.update(given.unmapped)
        ordered, key = rank(rows)
        notes = []
        if missing:
            notes.append(f"no int8 output found for: {', '.join(missing)}")
        return LayerAnalysis(
            status="ok",
            method=last.method,
            own_method=given.method if given is not None else last.own_method,
            layers=rows,
            unmapped=sorted(unmapped),
            ranked_by=key,  # type: ignore[arg-type]
            worst=ordered[:WORST],
            notes=notes,
        )

    @staticmethod
    def _rows(
        layers: list[CanonicalLayer],
        sums: dict[str, _Sums],
        own: dict[str, _Sums],
        last: Int8Outputs,
        given: OwnErrors | None,
    ) -> list[LayerError]:
        rows = []
        for layer in layers:
            row = LayerError(
                layer=layer.name,
                kind=layer.kind,
                tool_name=last.tool_names.get(layer.name),
                output_quantized=last.output_quantized.get(layer.name),
            )
            if sums[layer.name].n:
                row.sqnr_db, row.mse = sums[layer.name].figures()
            if own[layer.name].n:
                row.own_sqnr_db, row.own_mse = own[layer.name].figures()
            if given is not None and layer.name in given.figures:
                row.own_sqnr_db, row.own_mse = given.figures[layer.name]
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

    def what_if(
        self, variant: str, fp32: Any, k: int, worst: list[str], inputs: RequantizeInputs
    ) -> WhatIf:
        """The variant with its ``k`` worst layers in float: accuracy on the test split,
        agreement with fp32, size on disk, batch-1 latency p50 at the run's threads."""
        float_layers = worst[:k]
        row = WhatIf(k=k, float_layers=float_layers, status="ok")
        t0 = time.perf_counter()
        try:
            model = self.probe.requantize_keeping_float(variant, fp32, float_layers, inputs)
            row.seconds = time.perf_counter() - t0
            self._measure(row, model, fp32, f"{variant}-float{k}")
        except AnalysisUnavailable as exc:
            row.status, row.reason = "unavailable", exc.one_line()
        except Exception as exc:
            log.error("what-if %s k=%d failed:\n%s", variant, k, traceback.format_exc())
            row.status, row.reason = "failed", reason_of(exc)
        return row

    def _measure(self, row: WhatIf, model: Any, fp32: Any, stem: str) -> None:
        reference = self.fp32_predictions
        if reference is None:
            reference = self._predict(fp32).argmax(1)
        stats = accuracy(
            self._predict(model), self.data.test_labels, self.fw.device_of(model), reference
        )
        row.top1, row.agreement_with_fp32 = stats.top1, stats.agreement_with_fp32
        with tempfile.TemporaryDirectory(prefix="harness-whatif-") as tmp:
            row.size_bytes = self.fw.save(model, Path(tmp), stem).size.bytes
        run = time_forward(
            self.fw, model, latency_images(self.data, 1), self.spec.measure.latency, self.threads
        )
        row.latency_b1_p50_ms = run.stats.p50_ms
        row.device, row.threads = run.stats.device, run.stats.threads

    def _predict(self, model: Any) -> np.ndarray:
        batches = eval_batches(
            self.data.test_images, self.data.test_labels, self.spec.measure.eval_batch_size
        )
        return np.concatenate([self.fw.predict(model, b.images) for b in batches])


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
    study's harness_contract.phases.Phases: data, fp32 predictions, QAT fine-tuning).
    Never raises: a runner without a probe is recorded "unavailable"."""
    from .phases import calibration_batches

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
    return runner.analyse(variant, model, fp32, RequantizeInputs(calibration, phases.fine_tune))
