"""The paper's tables: accuracy (Fig. 3), size (Table I), training (Table II),
calibration (Table III), and memory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from harness.report.frame import ReportData
from harness.report.model import Beside, Column, Figure, Row, Section, Table, absent
from harness.report.variants import join_values
from harness_contract.metrics import VARIANTS

FRAMEWORK, VARIANT = Column("Framework"), Column("Variant")
PRECISION, STATUS, DEVICE = Column("Precision"), Column("Status"), Column("Device")
THREADS = Column("Threads", "count", "count")
WILSON = Column("Top-1 95% interval, Wilson", "%", align="right")

# Why the two increase figures differ; said under Table II.
TRAINING_EXPLAINED = (
    "*Increase per epoch* = (QAT s/epoch / baseline s/epoch - 1) x 100: the cost of the "
    "fake-quantization ops, comparable even though QAT runs fewer epochs than the baseline. "
    "*Increase total* = (QAT s / baseline s - 1) x 100: the paper's Table II measure, which "
    "also reflects the different epoch counts."
)


def variant_rows(frame: pd.DataFrame, variants: Sequence[str] = VARIANTS) -> list[pd.Series]:
    return [row for _, row in frame.iterrows() if row["variant"] in variants]


def frame_row(frame: pd.DataFrame, framework: str, variant: str) -> pd.Series | None:
    match = frame[(frame["framework"] == framework) & (frame["variant"] == variant)]
    return None if match.empty else match.iloc[0]


def get(row: pd.Series | None, column: str) -> Any:
    return None if row is None or column not in row.index else row[column]


def accuracy_table(frame: pd.DataFrame) -> Table:
    columns = [
        FRAMEWORK,
        VARIANT,
        PRECISION,
        STATUS,
        Column("Top-1", "%", "0.2"),
        WILSON,
        Column("Change vs fp32", "points", "0.2"),
        Column("McNemar p, exact", align="right"),
        Column("Agreement with fp32", "%", "0.2"),
        Column("Test images", "count", "count"),
        DEVICE,
    ]
    rows = [
        Row(
            [
                r["framework"], r["variant"], r["precision"], r["status"], r["accuracy_pct"],
                interval_text(get(r, "accuracy_ci_low_pct"), get(r, "accuracy_ci_high_pct")),
                get(r, "accuracy_change_pp"), p_value_text(get(r, "accuracy_mcnemar_p")),
                r["agreement_with_fp32_pct"], r["accuracy_n"], r["accuracy_device"],
            ],
            r["status"],
        )
        for r in variant_rows(frame)
    ]  # fmt: skip
    how = (
        "top-1 accuracy on the test images, in %, with its 95% Wilson interval for that many "
        "test images (one run: the images are the sample); change is the int8 variant's "
        "top-1 minus its framework's fp32 baseline, in percentage points, and McNemar's "
        "exact test asks whether it is more than chance, from the test images only one of "
        "the two classifies correctly ('—' where the run did not record them); agreement is "
        "the share of test images where the variant predicts the same class as its "
        "framework's fp32 baseline, in %. Device is where evaluation ran. Each model's first "
        "evaluation batch is run a second time: a model whose two identical calls differ "
        "is named below, as its top-1 is then one draw of several."
    )
    return Table(columns, rows, how, notes=repeat_notes(variant_rows(frame)), wide=True)


def repeat_notes(rows: Sequence[pd.Series]) -> list[str]:
    """One note per model whose first evaluation batch gave different logits when run
    again: its top-1 and agreement vary between identical runs (files before the check
    and models that repeated exactly say nothing)."""
    notes = []
    for r in rows:
        diff = get(r, "accuracy_repeat_max_abs_diff")
        if absent(diff) or diff == 0:
            continue
        runtime = get(r, "runtime")
        where = f"{r['framework']} {r['variant']}" + ("" if absent(runtime) else f" on {runtime}")
        notes.append(
            f"{where}: two identical calls on its first {int(r['accuracy_repeat_images'])} test "
            f"images differ (largest logit difference {diff:.3g}, "
            f"{int(r['accuracy_repeat_changed'])} predicted classes change) at "
            f"{int(r['accuracy_repeat_threads'])} thread(s), on {r['accuracy_device']}: "
            "its top-1 and agreement vary between runs of the same model (the Wilson "
            "interval covers only the choice of test images)."
        )
    return notes


def interval_text(low: Any, high: Any) -> str | None:
    return None if absent(low) or absent(high) else f"{low:.2f}–{high:.2f}"


def p_value_text(p: Any) -> str | None:
    """Three decimals; below 0.001 only the bound (more digits would claim precision)."""
    if absent(p):
        return None
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def size_table(frame: pd.DataFrame) -> Table:
    columns = [
        FRAMEWORK,
        VARIANT,
        Column("Baseline fp32", "MiB", "0.2"),
        Column("Baseline format"),
        Column("Quantized int8", "MiB", "0.2"),
        Column("Quantized format"),
        Column("Reduction", "%", "0.2"),
        Column("Parameters", "count", "count"),
    ]
    rows = []
    for r in variant_rows(frame, ("ptq", "qat")):
        base = frame_row(frame, r["framework"], "baseline")
        # The fp32 model in the int8 file's own format where one was written (TensorFlow's
        # fp32 .tflite), so the reduction compares one serialization with itself.
        if not absent(get(r, "size_fp32_mib")):
            base_size, base_format = r["size_fp32_mib"], r["size_format"]
        else:
            base_size, base_format = get(base, "size_mib"), get(base, "size_format")
        values = [r["framework"], r["variant"], base_size, base_format]
        values += [r["size_mib"], r["size_format"], r["size_reduction_pct"], r["parameters"]]
        rows.append(Row(values, r["status"]))
    how = (
        "serialized model size in MiB (bytes / 2^20; the paper's 'MB' are MiB) in the stated "
        "format; reduction = (1 - quantized / baseline) x 100 within one framework, with the "
        "baseline in the quantized model's own format where the run wrote one (TensorFlow's "
        "fp32 .tflite rather than its Keras .h5). Size does not depend on device or threads. "
        "Formats differ between frameworks, so compare reductions across frameworks, not raw "
        "sizes."
    )
    return Table(columns, rows, how, wide=True)


def _per_epoch(row: pd.Series | None) -> float | None:
    wall, epochs = get(row, "train_s"), get(row, "train_epochs")
    return None if absent(wall) or absent(epochs) or not epochs else wall / epochs


def _training_row(frame: pd.DataFrame, framework: str) -> Row:
    base, qat = frame_row(frame, framework, "baseline"), frame_row(frame, framework, "qat")
    devices = [d for d in (get(base, "train_device"), get(qat, "train_device")) if not absent(d)]
    threads = [t for t in (get(base, "train_threads"), get(qat, "train_threads")) if not absent(t)]
    return Row(
        [
            framework,
            get(base, "train_s"),
            get(base, "train_epochs"),
            _per_epoch(base),
            get(qat, "train_s"),
            get(qat, "train_epochs"),
            _per_epoch(qat),
            get(qat, "qat_time_increase_pct"),
            get(qat, "qat_time_increase_total_pct"),
            get(base, "images_per_s"),
            get(qat, "images_per_s"),
            join_values(devices),
            join_values(str(int(t)) for t in threads),
        ]
    )


def training_table(frame: pd.DataFrame) -> Table:
    seconds, per_epoch = ("s", "0.1"), ("s/epoch", "0.1")
    columns = [
        FRAMEWORK,
        Column("Baseline", *seconds),
        Column("Baseline epochs", "count", "count"),
        Column("Baseline", *per_epoch),
        Column("QAT", *seconds),
        Column("QAT epochs", "count", "count"),
        Column("QAT", *per_epoch),
        Column("Increase per epoch", "%", "0.2"),
        Column("Increase total", "%", "0.2"),
        Column("Baseline throughput", "images/s", "0.1"),
        Column("QAT throughput", "images/s", "0.1"),
        DEVICE,
        THREADS,
    ]
    rows = [_training_row(frame, fw) for fw in dict.fromkeys(frame["framework"])]
    how = (
        "wall-clock training time in seconds (s) and s/epoch, throughput in images/s, on the "
        "stated device and thread count. Baseline is fp32 training from scratch; QAT is "
        "quantization-aware fine-tuning of that baseline."
    )
    return Table(columns, rows, how, notes=[TRAINING_EXPLAINED], wide=True)


def calibration_table(frame: pd.DataFrame) -> Table:
    columns = [
        FRAMEWORK,
        VARIANT,
        Column("Flow"),
        Column("Calibration", "s", "0.1"),
        Column("Calibration samples", "count", "count"),
        Column("Conversion", "s", "0.1"),
        DEVICE,
        THREADS,
    ]
    fields = ("framework", "variant", "quant_flow", "calibration_s", "calibration_samples")
    fields += ("conversion_s", "conversion_device", "threads")
    rows = [Row([r[f] for f in fields], r["status"]) for r in variant_rows(frame, ("ptq", "qat"))]
    how = (
        "wall-clock seconds (s) on the stated device and thread count. PTQ calibrates on the "
        "stated number of training images, then converts; QAT only converts (no calibration)."
    )
    return Table(columns, rows, how)


def memory_table(frame: pd.DataFrame) -> Table:
    labels = {"": "Peak", "training_": "Training", "inference_": "Inference"}
    columns = [FRAMEWORK, VARIANT]
    columns += [
        Column(f"{labels[part]} {'RSS' if kind == 'rss' else 'GPU'}", "MiB", "0.2")
        for kind in ("rss", "gpu")
        for part in labels
    ]
    columns += [DEVICE, THREADS]
    fields = [f"{part}peak_{kind}_mib" for kind in ("rss", "gpu") for part in labels]
    fields = ["framework", "variant", *fields, "device", "threads"]
    rows = [Row([r[f] for f in fields], r["status"]) for r in variant_rows(frame)]
    how = (
        "peak resident memory of the runner process and peak GPU memory (the framework "
        "allocator's), in MiB (bytes / 2^20): over the whole variant's phase, then over its "
        "training alone and its inference alone (evaluation and latency runs). '—' where a "
        "variant has no such part (PTQ does not train) or no GPU was used. Device and "
        "threads are those the runner used."
    )
    return Table(columns, rows, how)


def _beside(heading: str, table: Table, figure: Figure, ref: str | None = None) -> Section:
    return Section(heading, [Beside(table, [figure])], table.how_to_read, ref)


def accuracy(data: ReportData, figure: Figure) -> Section:
    return _beside("Accuracy", accuracy_table(data.frame), figure, "Fig. 3")


def size(data: ReportData, figure: Figure) -> Section:
    return _beside("Model size (Table I)", size_table(data.frame), figure)


def training(data: ReportData, figure: Figure) -> Section:
    return _beside("Training time (Table II)", training_table(data.frame), figure)


def calibration(data: ReportData) -> Section:
    t = calibration_table(data.frame)
    return Section("Calibration (Table III)", [t], t.how_to_read)


def memory(data: ReportData) -> Section:
    t = memory_table(data.frame)
    return Section("Memory", [t], t.how_to_read)
