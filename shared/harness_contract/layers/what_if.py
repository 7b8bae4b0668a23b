"""What floating layers buys back (the per-layer analysis's second half, docs/layers.md).

* Sensitivity (``analysis.ranking = "sensitivity"``, AIMET QuantAnalyzer's per-layer
  analysis): the variant made again with one layer alone in float, for every weighted
  layer; its logits against fp32's on the analysis images (SQNR) and its agreement.
* What-if rows: for each k, the first k layers of the ranking left in float, measured as
  every model is (top-1 and agreement on the test split, size on disk, batch-1 latency).
  The plain int8 variant is the k = 0 row, measured again here and timed between the k
  rows (k0, k1, k0, k2, ..., k0), so every latency in the table comes from one window
  of the same machine load; k = 0 reports the median of its runs' medians.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness_contract.data.cifar import Cifar10
from harness_contract.data.stream import eval_batches
from harness_contract.failures import reason_of
from harness_contract.layers.error import WhatIf, sqnr_db
from harness_contract.layers.probe import AnalysisUnavailable, LayerProbe, RequantizeInputs
from harness_contract.spec import ExperimentSpec
from harness_contract.study.framework import Framework
from harness_contract.study.measurement import accuracy, latency_images, time_forward

log = logging.getLogger("harness.analysis")


@dataclass
class WhatIfRunner:
    fw: Framework
    probe: LayerProbe
    spec: ExperimentSpec
    data: Cifar10
    threads: int
    fp32_predictions: np.ndarray | None = None

    # ------------------------------------------------------------ sensitivity
    def sensitivity(
        self,
        variant: str,
        fp32: Any,
        layers: Sequence[str],
        images: np.ndarray,
        inputs: RequantizeInputs,
    ) -> dict[str, tuple[float | None, float]]:
        """Per layer: (logits SQNR, top-1 agreement) against fp32 on ``images`` with that
        layer alone in float. A layer whose requantization fails is left out (logged)."""
        reference = self.fw.predict(fp32, images)
        out = {}
        for name in layers:
            try:
                model = self.probe.requantize_keeping_float(variant, fp32, [name], inputs)
                logits = self.fw.predict(model, images)
            except Exception:  # one layer's failure: that layer only
                log.error("sensitivity of %s %s failed:\n%s", variant, name, traceback.format_exc())
                continue
            agreement = float((logits.argmax(1) == reference.argmax(1)).mean())
            out[name] = (sqnr_db(reference, logits), agreement)
        return out

    # ------------------------------------------------------------ what-if rows
    def rows(
        self,
        variant: str,
        qmodel: Any,
        fp32: Any,
        ranking: list[str],
        ks: Sequence[int],
        inputs: RequantizeInputs,
    ) -> list[WhatIf]:
        """The k = 0 row (the plain int8 variant), then one row per k."""
        base = WhatIf(k=0, float_layers=[], status="ok")
        reference = self._reference(fp32)
        try:
            self._accuracy_and_size(base, qmodel, reference, f"{variant}-int8")
        except Exception as exc:
            log.error("what-if %s k=0 failed:\n%s", variant, traceback.format_exc())
            base.status, base.reason = "failed", reason_of(exc)
        base_runs = []
        rows = [base]
        for k in ks:
            row, model = self._made_again(variant, fp32, k, ranking, inputs, reference)
            if model is not None:
                if base.status == "ok":
                    base_runs.append(self._timed(qmodel))
                self._time_into(row, model)
            rows.append(row)
        if base.status == "ok":
            base_runs.append(self._timed(qmodel))
            base.latency_b1_p50_ms = statistics.median(r.stats.p50_ms for r in base_runs)
            base.device, base.threads = base_runs[-1].stats.device, base_runs[-1].stats.threads
        return rows

    def _made_again(
        self,
        variant: str,
        fp32: Any,
        k: int,
        ranking: list[str],
        inputs: RequantizeInputs,
        reference: np.ndarray,
    ) -> tuple[WhatIf, Any]:
        """The row for k and its model (None when making or measuring it failed)."""
        float_layers = ranking[:k]
        row = WhatIf(k=k, float_layers=float_layers, status="ok")
        t0 = time.perf_counter()
        try:
            model = self.probe.requantize_keeping_float(variant, fp32, float_layers, inputs)
            row.seconds = time.perf_counter() - t0
            self._accuracy_and_size(row, model, reference, f"{variant}-float{k}")
            return row, model
        except AnalysisUnavailable as exc:
            row.status, row.reason = "unavailable", exc.one_line()
        except Exception as exc:
            log.error("what-if %s k=%d failed:\n%s", variant, k, traceback.format_exc())
            row.status, row.reason = "failed", reason_of(exc)
        return row, None

    def _reference(self, fp32: Any) -> np.ndarray:
        if self.fp32_predictions is not None:
            return self.fp32_predictions
        return self.predict(fp32).argmax(1)

    def _accuracy_and_size(self, row: WhatIf, model: Any, reference: np.ndarray, stem: str) -> None:
        stats = accuracy(
            self.predict(model), self.data.test_labels, self.fw.device_of(model), reference
        )
        row.top1, row.agreement_with_fp32 = stats.top1, stats.agreement_with_fp32
        with tempfile.TemporaryDirectory(prefix="harness-whatif-") as tmp:
            row.size_bytes = self.fw.save(model, Path(tmp), stem).size.bytes

    def _timed(self, model: Any) -> Any:
        images = latency_images(self.data, 1)
        return time_forward(self.fw, model, images, self.spec.measure.latency, self.threads)

    def _time_into(self, row: WhatIf, model: Any) -> None:
        try:
            run = self._timed(model)
        except Exception as exc:
            log.error("what-if k=%d timing failed:\n%s", row.k, traceback.format_exc())
            row.status, row.reason = "failed", reason_of(exc)
            return
        row.latency_b1_p50_ms = run.stats.p50_ms
        row.device, row.threads = run.stats.device, run.stats.threads

    def predict(self, model: Any) -> np.ndarray:
        batches = eval_batches(
            self.data.test_images, self.data.test_labels, self.spec.measure.eval_batch_size
        )
        return np.concatenate([self.fw.predict(model, b.images) for b in batches])
