"""results.csv: one typed row per framework x variant on its own runtime, then one per
rung (the same variant on another runtime), with latency pivoted into per-batch-size
columns; and ``ReportData``, everything a report is built from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from harness.report.latency import csv_block, csv_columns, csv_count_columns, latency_table
from harness.report.variants import MEMORY_PARTS, failed_framework_rows, rung_rows, variant_rows
from harness.results.profile_passes import PASSES, ProfilePass, profile_passes
from harness.results.run_metrics import FailedFramework, RunResults, log_tail
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import MetricsFile

# Columns before and after the per-batch-size latency block, in CSV order.
LEADING_COLUMNS = [
    "framework",
    "variant",
    "runtime",
    "runtime_role",  # "primary": the variant's own figures; "rung": another runtime
    "precision",
    "status",
    "reason",
    "quant_flow",
    "accuracy_pct",
    "agreement_with_fp32_pct",
    "accuracy_n",
    "accuracy_device",
    "accuracy_ci_low_pct",  # the Wilson interval of top-1 for its test-set size
    "accuracy_ci_high_pct",
    "accuracy_change_pp",  # top-1 minus the framework's fp32 top-1, percentage points
    "accuracy_mcnemar_p",  # McNemar's exact test of that change on the same test images
    "accuracy_only_this_correct",  # the discordant images the test is computed from
    "accuracy_only_fp32_correct",
    "accuracy_repeat_max_abs_diff",  # the first eval batch run twice: largest logit change
    "accuracy_repeat_changed",  # images of that batch whose predicted class changed
    "accuracy_repeat_images",
    "accuracy_repeat_threads",
    "size_mib",
    "size_format",
    "parameters",
    "size_reduction_pct",
    "size_fp32_mib",  # the fp32 model in the same runtime and format, the reduction's base
    "compile_s",
    "compile_per_batch_s",  # a rung's static compiles for its latency batches, summed
    "train_s",
    "train_epochs",
    "images_per_s",
    "qat_time_increase_pct",
    "qat_time_increase_total_pct",
    "train_device",
    "train_threads",
    "calibration_s",
    "calibration_samples",
    "conversion_s",
    "conversion_device",
]
# After the latency blocks: where latency was taken, then the profiler passes' headline shares.
LATENCY_META_COLUMNS = [
    "latency_device",
    "latency_threads",
    "latency_max_load_1m",
    "latency_sweep_notes",
]
PROFILE_COLUMNS = [
    f"profile_{kind}_{field}"
    for kind in PASSES
    for field in ("status", "device", "convolution_pct", "quantize_pct", "total_ms")
]
TRAILING_COLUMNS = [
    *(f"{part}peak_{kind}_mib" for kind in ("rss", "gpu") for part in MEMORY_PARTS),
    "framework_versions",
    "cpu_model",
    "cpu_count",
    "device",
    "threads",
    "spec_name",
    "spec_digest",
    "model",  # the network, as the report names it ("ViT (4 blocks, width 64, ...)")
    "seed",
    "dataset_kind",
    "run_status",
]
# Counts stay integers in the CSV even when some rows lack them.
COUNT_COLUMNS = {
    "accuracy_n",
    "accuracy_only_this_correct",
    "accuracy_only_fp32_correct",
    "accuracy_repeat_changed",
    "accuracy_repeat_images",
    "accuracy_repeat_threads",
    "parameters",
    "train_epochs",
    "train_threads",
    "calibration_samples",
    "threads",
    "cpu_count",
    "seed",
}
# latency_threads is text: a variant measured with mixed devices or threads lists them all.
TEXT_COLUMNS = {
    "framework",
    "variant",
    "precision",
    "status",
    "reason",
    "runtime",
    "runtime_role",
    "quant_flow",
    "accuracy_device",
    "size_format",
    "train_device",
    "conversion_device",
    "latency_device",
    "latency_threads",
    "latency_sweep_notes",
    *(f"profile_{kind}_{field}" for kind in PASSES for field in ("status", "device")),
    "framework_versions",
    "cpu_model",
    "cpu_count",
    "device",
    "spec_name",
    "spec_digest",
    "model",
    "dataset_kind",
    "run_status",
}


def _set_dtypes(frame: pd.DataFrame, counts: set[str]) -> pd.DataFrame:
    """Missing numbers become NaN (floats) or <NA> (counts), never None in a number column."""
    for column in frame.columns:
        kind = "text" if column in TEXT_COLUMNS else "count" if column in counts else "float"
        if kind == "count":
            frame[column] = pd.to_numeric(frame[column]).astype("Int64")
        elif kind == "float":
            frame[column] = pd.to_numeric(frame[column]).astype("float64")
    return frame


def _typed(rows: list[dict], latency: pd.DataFrame) -> pd.DataFrame:
    fixed = LEADING_COLUMNS + LATENCY_META_COLUMNS + PROFILE_COLUMNS + TRAILING_COLUMNS
    columns = LEADING_COLUMNS + csv_columns(latency) + fixed[len(LEADING_COLUMNS) :]
    table = pd.DataFrame(rows, columns=fixed)
    table = table.merge(csv_block(latency), on=["framework", "variant", "runtime"], how="left")
    counts = COUNT_COLUMNS | set(csv_count_columns(latency))
    return _set_dtypes(table.reindex(columns=columns), counts)


def _frame(
    metrics: Sequence[MetricsFile],
    failed: Sequence[FailedFramework],
    passes: list[ProfilePass],
    dirs: Mapping[str, FrameworkDir] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(variants on their own runtime, rungs, long latency table)."""
    latency = latency_table(list(metrics), dirs)
    rows = [
        r
        for m in metrics
        for r in variant_rows(m, [p for p in passes if p.framework == m.framework])
    ]
    rows += [r for f in failed for r in failed_framework_rows(f)]
    rows.sort(key=lambda r: r["framework"])  # stable: variants keep their order
    rungs = [r for m in metrics for r in rung_rows(m)]
    return _typed(rows, latency), _typed(rungs, latency), latency


def _csv(frame: pd.DataFrame, rungs: pd.DataFrame) -> pd.DataFrame:
    """Each variant's own row, then its rungs, framework by framework."""
    if rungs.empty:
        return frame
    both = pd.concat([frame, rungs], ignore_index=True)
    order = {v: i for i, v in enumerate(("baseline", "ptq", "qat"))}
    key = both["variant"].map(order).fillna(len(order))
    both = both.assign(_v=key, _r=(both["runtime_role"] != "primary").astype(int))
    both = both.sort_values(["framework", "_v", "_r"], kind="stable")
    return both.drop(columns=["_v", "_r"]).reset_index(drop=True)


def results_frame(
    metrics: Sequence[MetricsFile], failed: Sequence[FailedFramework] = ()
) -> pd.DataFrame:
    """results.csv: one row per framework x variant (baseline, ptq, qat) on its own
    runtime, failed and skipped included (a framework that left no metrics.json gets
    failed rows), each followed by its rungs on the framework's other runtimes."""
    passes = [p for m in metrics for p in profile_passes(m)]
    frame, rungs, _ = _frame(metrics, failed, passes)
    return _csv(frame, rungs)


@dataclass(frozen=True)
class ReportData:
    """What every section and figure is drawn from, computed once per report."""

    metrics: list[MetricsFile]
    failed: list[FailedFramework]
    problems: list[str]  # unreadable metrics.json files, one line each, naming the file
    passes: list[ProfilePass]  # every profiler pass, traces checked on disk
    frame: pd.DataFrame  # one row per framework x variant, on the variant's own runtime
    latency: pd.DataFrame  # long: framework x variant x runtime x batch size x threads
    rungs: pd.DataFrame  # one row per framework x variant x other runtime
    # The last lines of runner.log of each run that ended failed or interrupted: context
    # beside its recorded reason (a killed runner's last line is seldom the reason).
    log_tails: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_results(cls, results: RunResults) -> ReportData:
        passes = [p for fw, m in results.found for p in profile_passes(m, fw)]
        dirs = {m.framework: fw for fw, m in results.found}
        frame, rungs, latency = _frame(results.metrics, results.failed, passes, dirs)
        tails = {
            m.framework: log_tail(fw.log)
            for fw, m in results.found
            if m.status in ("failed", "interrupted")
        }
        return cls(
            results.metrics, results.failed, results.problems, passes, frame, latency, rungs, tails
        )

    @cached_property
    def csv(self) -> pd.DataFrame:
        """results.csv: each variant's own row, then its rungs."""
        return _csv(self.frame, self.rungs)

    @classmethod
    def from_metrics(
        cls, metrics: Sequence[MetricsFile], problems: Sequence[str] = ()
    ) -> ReportData:
        """Without a run directory: traces say only what metrics.json recorded."""
        passes = [p for m in metrics for p in profile_passes(m)]
        frame, rungs, latency = _frame(metrics, [], passes)
        return cls(list(metrics), [], list(problems), passes, frame, latency, rungs)
