"""The report: figures computed from metrics.json, tables rendered, problems surfaced."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from harness.report import (
    collect,
    markdown_table,
    render_markdown,
    results_frame,
    write_report,
)
from harness_contract.errors import HarnessError
from harness_contract.metrics import (
    AccuracyStats,
    ConversionStats,
    DatasetInfo,
    LatencyStats,
    MemoryStats,
    MetricsFile,
    Provenance,
    SizeStats,
    TrainingStats,
    VariantMetrics,
    write_metrics,
)

MIB = 2**20
BASELINE_BYTES = 44_690_000
PTQ_BYTES = 11_300_000
QAT_BYTES = 11_280_000
# Baseline trains 10 epochs in 168 s (16.8 s/epoch); QAT fine-tunes 4 epochs at 32.82 s/epoch.
BASELINE_WALL_S, BASELINE_EPOCHS = 168.0, 10
QAT_WALL_S, QAT_EPOCHS = 131.28, 4


def _latency(batch_size: int, p50: float, device: str = "cpu", threads: int = 4) -> LatencyStats:
    return LatencyStats(
        batch_size=batch_size,
        device=device,
        threads=threads,
        n=200,
        total_s=p50 * 200 / 1000,
        mean_ms=p50,
        std_ms=0.5,
        min_ms=p50 * 0.9,
        p50_ms=p50,
        p90_ms=p50 * 1.1,
        p99_ms=p50 * 1.5,
        max_ms=p50 * 2,
        stop_reason="min_count_and_duration",
    )


def _training(wall_s: float, epochs: int, device: str = "cpu") -> TrainingStats:
    return TrainingStats(
        device=device,
        threads=4,
        epochs=epochs,
        wall_s=wall_s,
        epoch_s=[wall_s / epochs] * epochs,
        images=5000 * epochs,
        images_per_s=5000 * epochs / wall_s,
    )


def _accuracy(top1: float, agreement: float | None) -> AccuracyStats:
    return AccuracyStats(top1=top1, n=1000, device="cpu", agreement_with_fp32=agreement)


def _baseline(latency_device: str = "cpu") -> VariantMetrics:
    return VariantMetrics(
        variant="baseline",
        status="ok",
        precision="fp32",
        accuracy=_accuracy(0.8123, None),
        training=_training(BASELINE_WALL_S, BASELINE_EPOCHS),
        size=SizeStats(bytes=BASELINE_BYTES, format="state_dict", parameters=11_173_962),
        latency=[_latency(1, 33.0, latency_device), _latency(5, 100.0, latency_device)],
        memory=MemoryStats(peak_rss_bytes=900 * MIB, peak_gpu_bytes=None),
    )


def _ptq() -> VariantMetrics:
    return VariantMetrics(
        variant="ptq",
        status="ok",
        precision="int8",
        accuracy=_accuracy(0.8050, 0.975),
        conversion=ConversionStats(
            flow="pt2e-x86",
            device="cpu",
            calibration_samples=512,
            calibration_s=40.0,
            conversion_s=2.5,
            quantized_ops=["quantized_decomposed.quantize_per_tensor"],
        ),
        size=SizeStats(bytes=PTQ_BYTES, format="state_dict", parameters=11_173_962),
        latency=[_latency(1, 13.0), _latency(5, 40.0)],
        memory=MemoryStats(peak_rss_bytes=1024 * MIB),
    )


def _qat() -> VariantMetrics:
    return VariantMetrics(
        variant="qat",
        status="ok",
        precision="int8",
        accuracy=_accuracy(0.8100, 0.99),
        training=_training(QAT_WALL_S, QAT_EPOCHS),
        conversion=ConversionStats(flow="pt2e-x86-qat", device="cpu", conversion_s=3.0),
        size=SizeStats(bytes=QAT_BYTES, format="state_dict", parameters=11_173_962),
        latency=[_latency(1, 12.0), _latency(5, 38.0)],
        memory=MemoryStats(peak_rss_bytes=1100 * MIB),
    )


def make_metrics(
    framework: str = "pytorch",
    *,
    dataset_kind: str = "real",
    variants: list[VariantMetrics] | None = None,
    status: str = "complete",
    spec_digest: str = "abcdef0123456789",
) -> MetricsFile:
    """A realistic metrics file with known numbers (a finished run unless told otherwise)."""
    variants = variants if variants is not None else [_baseline(), _ptq(), _qat()]
    return MetricsFile(
        framework=framework,
        status=status,
        run_id="20261101-120000-quick",
        spec_name="quick",
        spec_digest=spec_digest,
        seed=42,
        started_at="2026-11-01T12:00:00+00:00",
        updated_at="2026-11-01T12:10:00+00:00",
        provenance=Provenance(
            harness_version="0.1.0",
            framework_versions={"torch": "2.13.0", "torchao": "0.18.0"},
            python="3.12.3",
            platform="Linux-6.8-x86_64",
            hostname="bench-1",
            runtime="local (/work/main/.venv/bin/python)",
            cpu_model="Intel(R) Xeon(R) Platinum 8480+",
            cpu_flags=["avx2", "avx512f", "avx512_vnni", "amx_int8"],
            cpu_count=16,
            threads=4,
            device="cpu",
        ),
        dataset=DatasetInfo(
            path="../shared/data/cifar10-subset",
            kind=dataset_kind,
            train_images=5000,
            test_images=1000,
            digest="d1g35t",
        ),
        variants={v.variant: v for v in variants},
    )


def write_run(run_dir: Path, *metrics: MetricsFile) -> Path:
    for m in metrics:
        write_metrics(run_dir / m.framework / "metrics.json", m)
    return run_dir


def row(frame: pd.DataFrame, framework: str, variant: str) -> pd.Series:
    match = frame[(frame["framework"] == framework) & (frame["variant"] == variant)]
    assert len(match) == 1
    return match.iloc[0]


# ---------------------------------------------------------------- computed figures


def test_size_reduction_is_relative_to_the_frameworks_own_baseline() -> None:
    frame = results_frame([make_metrics()])

    assert row(frame, "pytorch", "baseline")["size_reduction_pct"] == pytest.approx(0.0)
    assert row(frame, "pytorch", "ptq")["size_reduction_pct"] == pytest.approx(
        (1 - PTQ_BYTES / BASELINE_BYTES) * 100
    )
    assert row(frame, "pytorch", "ptq")["size_reduction_pct"] == pytest.approx(74.7147, abs=1e-4)
    assert row(frame, "pytorch", "qat")["size_reduction_pct"] == pytest.approx(74.7595, abs=1e-4)


def test_sizes_and_memory_are_converted_to_mib() -> None:
    frame = results_frame([make_metrics()])
    baseline = row(frame, "pytorch", "baseline")

    # The paper's Table I reports 42.62 "MB" for PyTorch's baseline: these are MiB.
    assert baseline["size_mib"] == pytest.approx(BASELINE_BYTES / 2**20)
    assert round(baseline["size_mib"], 2) == 42.62
    assert row(frame, "pytorch", "ptq")["size_mib"] == pytest.approx(10.7765, abs=1e-4)
    assert baseline["peak_rss_mib"] == pytest.approx(900.0)
    assert math.isnan(baseline["peak_gpu_mib"])


def test_qat_time_increase_is_reported_per_epoch_and_in_total_on_the_qat_row_only() -> None:
    frame = results_frame([make_metrics()])
    qat = row(frame, "pytorch", "qat")

    # 32.82 s/epoch vs 16.8 s/epoch, the ratio of the paper's Table II.
    assert qat["qat_time_increase_pct"] == pytest.approx((32.82 / 16.8 - 1) * 100)
    assert qat["qat_time_increase_pct"] == pytest.approx(95.357, abs=1e-3)
    # In total QAT ran fewer epochs, so it took less wall time than the baseline.
    assert qat["qat_time_increase_total_pct"] == pytest.approx((131.28 / 168.0 - 1) * 100)
    assert qat["train_s"] == pytest.approx(QAT_WALL_S)
    assert qat["train_epochs"] == QAT_EPOCHS
    for variant in ("baseline", "ptq"):
        assert math.isnan(row(frame, "pytorch", variant)["qat_time_increase_pct"])
        assert math.isnan(row(frame, "pytorch", variant)["qat_time_increase_total_pct"])


def test_accuracy_and_agreement_are_percentages() -> None:
    frame = results_frame([make_metrics()])

    assert row(frame, "pytorch", "baseline")["accuracy_pct"] == pytest.approx(81.23)
    assert math.isnan(row(frame, "pytorch", "baseline")["agreement_with_fp32_pct"])
    assert row(frame, "pytorch", "ptq")["agreement_with_fp32_pct"] == pytest.approx(97.5)


def test_latency_gets_columns_per_measured_batch_size() -> None:
    frame = results_frame([make_metrics()])
    ptq = row(frame, "pytorch", "ptq")

    for b in (1, 5):
        for stat in ("p50_ms", "p90_ms", "p99_ms", "per_sample_p50_ms", "n"):
            assert f"latency_b{b}_{stat}" in frame.columns
    assert "latency_b32_p50_ms" not in frame.columns
    assert ptq["latency_b1_p50_ms"] == pytest.approx(13.0)
    assert ptq["latency_b1_p90_ms"] == pytest.approx(14.3)
    assert ptq["latency_b1_p99_ms"] == pytest.approx(19.5)
    assert ptq["latency_b5_per_sample_p50_ms"] == pytest.approx(8.0)
    assert ptq["latency_b5_n"] == 200
    assert ptq["latency_device"] == "cpu"
    assert ptq["latency_threads"] == "4"


def test_calibration_and_provenance_columns() -> None:
    frame = results_frame([make_metrics()])
    ptq, qat = row(frame, "pytorch", "ptq"), row(frame, "pytorch", "qat")

    assert ptq["calibration_s"] == pytest.approx(40.0)
    assert ptq["calibration_samples"] == 512
    assert ptq["conversion_s"] == pytest.approx(2.5)
    assert ptq["quant_flow"] == "pt2e-x86"
    assert math.isnan(qat["calibration_s"])
    assert ptq["framework_versions"] == "torch 2.13.0, torchao 0.18.0"
    assert ptq["device"] == "cpu"
    assert ptq["threads"] == 4
    assert ptq["spec_digest"] == "abcdef0123456789"
    assert ptq["seed"] == 42
    assert ptq["dataset_kind"] == "real"
    assert ptq["run_status"] == "complete"


def test_one_row_per_framework_and_variant_in_order() -> None:
    frame = results_frame([make_metrics("pytorch"), make_metrics("tensorflow")])

    assert list(zip(frame["framework"], frame["variant"], strict=True)) == [
        ("pytorch", "baseline"),
        ("pytorch", "ptq"),
        ("pytorch", "qat"),
        ("tensorflow", "baseline"),
        ("tensorflow", "ptq"),
        ("tensorflow", "qat"),
    ]
    assert list(frame["precision"]) == ["fp32", "int8", "int8"] * 2


def test_failed_variant_row_keeps_status_and_reason_with_nan_numbers() -> None:
    failed = VariantMetrics(
        variant="ptq", status="failed", precision="int8", reason="converter raised RuntimeError"
    )
    frame = results_frame([make_metrics(variants=[_baseline(), failed, _qat()])])
    ptq = row(frame, "pytorch", "ptq")

    assert ptq["status"] == "failed"
    assert ptq["reason"] == "converter raised RuntimeError"
    for column in ("accuracy_pct", "size_mib", "size_reduction_pct", "latency_b1_p50_ms"):
        assert math.isnan(ptq[column])
    assert pd.isna(ptq["calibration_samples"])
    assert row(frame, "pytorch", "qat")["status"] == "ok"


def test_variant_a_running_framework_has_not_reached_gets_a_missing_row() -> None:
    frame = results_frame([make_metrics(variants=[_baseline()], status="running")])

    assert len(frame) == 3
    qat = row(frame, "pytorch", "qat")
    assert qat["status"] == "missing"
    assert "running" in qat["reason"]
    assert qat["precision"] == "int8"


# ---------------------------------------------------------------- collecting


def test_collect_reads_every_framework_sorted_by_name(tmp_path: Path) -> None:
    write_run(tmp_path, make_metrics("tensorflow"), make_metrics("pytorch"))
    (tmp_path / "spec.json").write_text("{}")

    metrics, problems = collect(tmp_path)

    assert [m.framework for m in metrics] == ["pytorch", "tensorflow"]
    assert problems == []


def test_unreadable_metrics_is_a_problem_while_the_other_framework_renders(
    tmp_path: Path,
) -> None:
    write_run(tmp_path, make_metrics("pytorch"))
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "metrics.json").write_text("{not json")

    metrics, problems = collect(tmp_path)
    paths = write_report(tmp_path)
    report = paths.md.read_text()

    assert [m.framework for m in metrics] == ["pytorch"]
    assert len(problems) == 1
    assert problems[0].startswith("tensorflow: ")
    assert "not valid JSON" in problems[0]
    assert "not valid JSON" in report
    assert "| pytorch | ptq |" in report
    assert set(pd.read_csv(paths.csv)["framework"]) == {"pytorch"}


def test_missing_run_dir_raises_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(HarnessError) as info:
        collect(tmp_path / "nope")

    assert "does not exist" in info.value.problem
    assert "harness compare" in info.value.fix


def test_run_dir_without_metrics_raises_no_results(tmp_path: Path) -> None:
    (tmp_path / "pytorch").mkdir()

    with pytest.raises(HarnessError) as info:
        collect(tmp_path)

    assert info.value.problem == f"no results in {tmp_path}"
    assert info.value.fix == "run `harness compare` or `harness run FRAMEWORK` first"


def test_run_dir_with_only_unreadable_metrics_raises_and_names_them(tmp_path: Path) -> None:
    (tmp_path / "pytorch").mkdir()
    (tmp_path / "pytorch" / "metrics.json").write_text('{"schema_version": 99}')

    with pytest.raises(HarnessError) as info:
        collect(tmp_path)

    assert "schema_version 99" in info.value.problem


# ---------------------------------------------------------------- files


def test_results_csv_round_trips_with_expected_columns(tmp_path: Path) -> None:
    write_run(tmp_path, make_metrics("pytorch"), make_metrics("tensorflow"))

    paths = write_report(tmp_path)
    back = pd.read_csv(paths.csv)

    assert (paths.csv, paths.md, paths.html) == (
        tmp_path / "results.csv",
        tmp_path / "report.md",
        tmp_path / "report.html",
    )
    assert paths.html.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in paths.figures) == sorted(
        p.name for p in (tmp_path / "figures").glob("*.svg")
    )
    assert paths.figures
    assert list(back.columns) == list(results_frame(collect(tmp_path)[0]).columns)
    assert back.columns[:4].tolist() == ["framework", "variant", "precision", "status"]
    assert back.columns[-1] == "run_status"
    assert len(back) == 6
    ptq = back[(back["framework"] == "tensorflow") & (back["variant"] == "ptq")].iloc[0]
    assert ptq["size_reduction_pct"] == pytest.approx((1 - PTQ_BYTES / BASELINE_BYTES) * 100)
    assert ptq["latency_b5_n"] == 200
    assert ptq["parameters"] == 11_173_962


def test_report_has_the_papers_table_headings_and_units(tmp_path: Path) -> None:
    write_run(tmp_path, make_metrics())

    report = write_report(tmp_path).md.read_text()

    for heading in (
        "# Quantization comparison — run `20261101-120000-quick`",
        "## Status",
        "## Accuracy",
        "## Model size (Table I)",
        "## Training time (Table II)",
        "## Calibration (Table III)",
        "## Latency",
        "## Memory",
        "## Provenance",
    ):
        assert heading in report
    assert "All frameworks complete; every variant ok." in report
    assert "| Baseline fp32 (MiB) |" in report
    # Table I row: 42.62 MiB -> 10.78 MiB, 74.71 % smaller.
    assert "| pytorch | ptq | 42.62 | state_dict | 10.78 | state_dict | 74.71 |" in report
    # Table II row: 168.0 s over 10 epochs, 131.3 s over 4, +95.36 % per epoch.
    assert "| pytorch | 168.0 | 10 | 16.8 | 131.3 | 4 | 32.8 | 95.36 | -21.86 |" in report
    assert "Increase per epoch" in report and "Increase total" in report
    assert "| pytorch | ptq | pt2e-x86 | 40.0 | 512 | 2.5 | cpu | 4 |" in report
    assert "| pytorch | ptq | int8 | 1 | 13.00 | 14.30 | 19.50 | 13.00 | 200 | cpu | 4 |" in report
    assert "torch 2.13.0, torchao 0.18.0" in report
    assert "avx512_vnni" in report


def test_report_warns_prominently_about_synthetic_data() -> None:
    synthetic = make_metrics(dataset_kind="synthetic")
    real = make_metrics()

    warned = render_markdown([synthetic], results_frame([synthetic]), [])
    quiet = render_markdown([real], results_frame([real]), [])

    assert "accuracy figures are not meaningful on synthetic data" in warned
    assert "synthetic" not in quiet


def test_report_says_when_fp32_and_int8_latency_ran_on_different_devices() -> None:
    gpu = "cuda:0 (NVIDIA H100)"
    split = make_metrics(variants=[_baseline(latency_device=gpu), _ptq(), _qat()])
    same = make_metrics()

    noted = render_markdown([split], results_frame([split]), [])
    quiet = render_markdown([same], results_frame([same]), [])

    assert f"fp32 latency was measured on `{gpu}` but int8 (ptq) on `cpu`" in noted
    assert "different devices" in noted
    assert "compared only on the same device" in quiet
    assert "fp32 latency was measured on" not in quiet


def test_report_lists_failed_variants_and_shows_dashes_for_missing_numbers() -> None:
    failed = VariantMetrics(
        variant="qat", status="failed", precision="int8", reason="fake-quant\nnot supported"
    )
    metrics = make_metrics(variants=[_baseline(), _ptq(), failed])

    report = render_markdown([metrics], results_frame([metrics]), [])

    assert "- **pytorch / qat** failed: fake-quant not supported" in report
    assert "| pytorch | qat | int8 | failed | — | — | — | — |" in report


def test_report_flags_frameworks_that_ran_different_specs() -> None:
    metrics = [make_metrics("pytorch"), make_metrics("tensorflow", spec_digest="ffff")]

    report = render_markdown(metrics, results_frame(metrics), [])

    assert "**Not comparable:** the frameworks ran with different spec digests" in report


def test_markdown_table_escapes_pipes_and_newlines() -> None:
    table = markdown_table(["A (ms)", "B"], [["1.00", "x|y\nz"]])

    assert table.splitlines() == ["| A (ms) | B |", "| --- | --- |", "| 1.00 | x\\|y z |"]


def _with_load(variant: VariantMetrics, load_1m: float) -> VariantMetrics:
    busy = [lat.model_copy(update={"load_1m": load_1m}) for lat in variant.latency]
    return variant.model_copy(update={"latency": busy})


def test_latency_measured_on_a_busy_machine_is_flagged_with_its_load() -> None:
    # cpu_count is 16 in make_metrics: a load of 20 means other work competed.
    metrics = make_metrics(
        variants=[_with_load(_baseline(), 20.0), _with_load(_ptq(), 3.0), _qat()]
    )
    frame = results_frame([metrics])
    assert row(frame, "pytorch", "baseline")["latency_max_load_1m"] == 20.0
    text = render_markdown([metrics], frame)
    assert "pytorch baseline: the 1-minute load average reached 20.0 on 16 cores" in text
    assert "pytorch ptq: the 1-minute load average" not in text


def test_frameworks_that_started_from_different_weights_are_flagged() -> None:
    torch_run = make_metrics("pytorch").model_copy(update={"initial_weights": "shared:aaaa"})
    tf_run = make_metrics("tensorflow").model_copy(update={"initial_weights": "framework-default"})
    text = render_markdown([torch_run, tf_run], results_frame([torch_run, tf_run]))
    assert "different initial weights" in text
    assert "Initial weights: `shared:aaaa`" in text
