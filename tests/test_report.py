"""The report: figures computed from metrics.json, tables rendered, problems surfaced."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from harness.report import (
    ReportData,
    build_report,
    collect,
    markdown_table,
    render_markdown,
    results_frame,
    write_report,
)
from harness_contract.errors import HarnessError
from harness_contract.metrics import (
    DatasetInfo,
    MetricsFile,
    Provenance,
    VariantMetrics,
    write_metrics,
)
from harness_contract.metrics.figures import (
    AccuracyStats,
    ConversionStats,
    LatencyStats,
    MemoryStats,
    OpTime,
    ProfileStats,
    SizeStats,
    TopOp,
    TrainingStats,
)
from harness_contract.study.breakdown import CATEGORIES

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


# Per-sample latency at 1 thread is 2.5x the run's own (4 threads): a 1-thread row that
# leaked into the main columns would show up as these numbers.
ONE_THREAD_FACTOR = 2.5


def _latencies(p50s: dict[int, float], device: str = "cpu") -> list[LatencyStats]:
    """Rows at the run's 4 threads first, then the 1-thread sweep, as the pipeline writes them."""
    own = [_latency(b, p50, device) for b, p50 in p50s.items()]
    single = [_latency(b, p50 * ONE_THREAD_FACTOR, device, 1) for b, p50 in p50s.items()]
    return own + single


# Known shares (fractions of the device's profiled op self time) per variant and pass, after
# the paper's observations: fp32 inference ~70 % convolution; int8 27 % conv, 34 % q/dq.
SHARES = {
    ("baseline", "train"): {"convolution": 0.55, "elementwise": 0.25, "data": 0.05, "other": 0.15},
    ("baseline", "inference"): {"convolution": 0.70, "elementwise": 0.20, "memory": 0.10},
    ("ptq", "inference"): {
        "convolution": 0.27,
        "quantize": 0.34,
        "elementwise": 0.25,
        "memory": 0.14,
    },
    ("qat", "train"): {"convolution": 0.40, "quantize": 0.30, "elementwise": 0.30},
    ("qat", "inference"): {"convolution": 0.30, "quantize": 0.31, "elementwise": 0.39},
}
PROFILE_TOTAL_US = {"train": 1_500_000.0, "inference": 96_000.0}  # 1,500 ms and 96 ms


def _profile(
    variant: str, kind: str, device: str = "cpu", framework: str = "pytorch"
) -> ProfileStats:
    shares, total = SHARES[(variant, kind)], PROFILE_TOTAL_US[kind]
    torch_like = framework == "pytorch"
    trace = f"traces/{variant}-{kind}" + (".pt.trace.json" if torch_like else "")
    top = max(shares, key=shares.get)
    return ProfileStats(
        kind=kind,
        status="ok",
        tool="torch.profiler" if torch_like else "tf.profiler (xplane)",
        device=device,
        threads=4,
        batch_size=128 if kind == "train" else 32,
        steps=3,
        trace=trace,
        viewer="perfetto" if torch_like else "tensorboard",
        trace_bytes=2_000_000,
        total_us={"cpu": total},
        breakdown=[
            OpTime(category=c, device="cpu", time_us=total * f, share=f) for c, f in shares.items()
        ],
        top_ops=[
            TopOp(
                name=f"op::{top}_kernel",
                category=top,
                device="cpu",
                time_us=total * shares[top],
                calls=30,
                share=shares[top],
            )
        ],
    )


def _unavailable(kind: str, reason: str) -> ProfileStats:
    return ProfileStats(
        kind=kind,
        status="unavailable",
        reason=reason,
        device="cpu",
        threads=4,
        batch_size=32,
        steps=3,
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
        latency=_latencies({1: 33.0, 5: 100.0}, latency_device),
        memory=MemoryStats(peak_rss_bytes=900 * MIB, peak_gpu_bytes=None),
        profiles=[_profile("baseline", "train"), _profile("baseline", "inference")],
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
        latency=_latencies({1: 13.0, 5: 40.0}),
        memory=MemoryStats(peak_rss_bytes=1024 * MIB),
        profiles=[_profile("ptq", "inference")],
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
        latency=_latencies({1: 12.0, 5: 38.0}),
        memory=MemoryStats(peak_rss_bytes=1100 * MIB),
        profiles=[_profile("qat", "train"), _profile("qat", "inference")],
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


def markdown(metrics: list[MetricsFile], problems: list[str] | None = None) -> str:
    """report.md for metrics without a run directory (traces as metrics.json records them)."""
    return render_markdown(build_report(ReportData.from_metrics(metrics, problems or [])))


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


def test_memory_table_shows_training_and_inference_peaks_apart() -> None:
    memory = MemoryStats(
        peak_rss_bytes=2048 * MIB,
        peak_gpu_bytes=700 * MIB,
        training_peak_rss_bytes=2000 * MIB,
        training_peak_gpu_bytes=700 * MIB,
        inference_peak_rss_bytes=1500 * MIB,
        inference_peak_gpu_bytes=120 * MIB,
    )
    gpu_baseline = _baseline().model_copy(update={"memory": memory})
    metrics = [make_metrics("pytorch", variants=[gpu_baseline, _ptq(), _qat()])]
    frame = results_frame(metrics)
    assert row(frame, "pytorch", "baseline")["inference_peak_gpu_mib"] == pytest.approx(120)
    section = _section(markdown(metrics), "Memory")
    assert "| Training RSS (MiB) | Inference RSS (MiB) | Peak GPU (MiB) |" in section
    assert (
        "| pytorch | baseline | 2,048.00 | 2,000.00 | 1,500.00 | 700.00 | 700.00 | 120.00 |"
        in section
    )


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
    assert back.columns[:6].tolist() == [
        "framework",
        "variant",
        "runtime",
        "runtime_role",
        "precision",
        "status",
    ]
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
    assert (
        "| pytorch | ptq | PyTorch eager | int8 | 1 | 13.00 | — | 14.30 | 19.50 | 13.00 | 200 "
        "| cpu | 4 |" in report
    )
    assert "torch 2.13.0, torchao 0.18.0" in report
    assert "avx512_vnni" in report


def test_report_warns_prominently_about_synthetic_data() -> None:
    synthetic = make_metrics(dataset_kind="synthetic")
    real = make_metrics()

    warned = markdown([synthetic])
    quiet = markdown([real])

    assert "accuracy figures are not meaningful on synthetic data" in warned
    assert "synthetic" not in quiet


def test_report_says_when_fp32_and_int8_latency_ran_on_different_devices() -> None:
    gpu = "cuda:0 (NVIDIA H100)"
    split = make_metrics(variants=[_baseline(latency_device=gpu), _ptq(), _qat()])
    same = make_metrics()

    noted = markdown([split])
    quiet = markdown([same])

    assert f"fp32 latency was measured on `{gpu}` but int8 (ptq) on `cpu`" in noted
    assert "different devices" in noted
    assert "compared only on the same runtime and device" in quiet
    assert "fp32 latency was measured on" not in quiet


def test_report_lists_failed_variants_and_shows_dashes_for_missing_numbers() -> None:
    failed = VariantMetrics(
        variant="qat", status="failed", precision="int8", reason="fake-quant\nnot supported"
    )
    metrics = make_metrics(variants=[_baseline(), _ptq(), failed])

    report = markdown([metrics])

    assert "- **pytorch / qat** failed: fake-quant not supported" in report
    assert "| pytorch | qat | int8 | failed | — | — | — | — |" in report


def test_report_flags_frameworks_that_ran_different_specs() -> None:
    metrics = [make_metrics("pytorch"), make_metrics("tensorflow", spec_digest="ffff")]

    report = markdown(metrics)

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
    text = markdown([metrics])
    assert "pytorch baseline: the 1-minute load average reached 20.0 on 16 cores" in text
    assert "pytorch ptq: the 1-minute load average" not in text


def test_frameworks_that_started_from_different_weights_are_flagged() -> None:
    torch_run = make_metrics("pytorch").model_copy(update={"initial_weights": "shared:aaaa"})
    tf_run = make_metrics("tensorflow").model_copy(update={"initial_weights": "framework-default"})
    text = markdown([torch_run, tf_run])
    assert "different initial weights" in text
    assert "Initial weights: `shared:aaaa`" in text


# ---------------------------------------------------------------- threads and batch sizes


def _section(report: str, heading: str) -> str:
    """The text of one '## heading' section, up to the next one."""
    return report.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_main_latency_columns_hold_the_runs_own_threads_and_1_thread_gets_its_own() -> None:
    frame = results_frame([make_metrics()])
    ptq = row(frame, "pytorch", "ptq")

    # The 1-thread rows come after the run's (4 threads): they must not overwrite them.
    assert ptq["latency_b1_p50_ms"] == pytest.approx(13.0)
    assert ptq["latency_b5_per_sample_p50_ms"] == pytest.approx(8.0)
    assert ptq["latency_threads"] == "4"
    assert ptq["latency_b1_t1_per_sample_p50_ms"] == pytest.approx(13.0 * ONE_THREAD_FACTOR)
    assert ptq["latency_b5_t1_per_sample_p50_ms"] == pytest.approx(40.0 * ONE_THREAD_FACTOR / 5)
    assert "latency_b1_t4_per_sample_p50_ms" not in frame.columns


def test_latency_table_shows_no_1_thread_rows() -> None:
    metrics = make_metrics()
    report = markdown([metrics])
    latency = _section(report, "Latency")

    rows = [line for line in latency.splitlines() if line.startswith("| pytorch")]
    assert len(rows) == 6  # 3 variants x batch 1 and 5, at 4 threads only
    assert all(line.endswith("| cpu | 4 |") for line in rows)
    assert "32.50" not in latency  # PTQ's 1-thread p50 at batch 1


def test_sweep_table_lists_per_sample_p50_per_batch_for_own_and_1_thread() -> None:
    metrics = make_metrics()
    sweep = _section(markdown([metrics]), "Latency by batch size and threads")

    assert (
        "| Framework | Variant | Runtime | Precision | Device | Threads (count) | "
        "Batch 1: p50 per sample (ms) | Batch 5: p50 per sample (ms) | "
        "int8 speed-up vs fp32 on the same runtime, batch 1 (x) | "
        "int8 speed-up vs fp32 on the same runtime, batch 5 (x) |"
    ) in sweep
    # fp32 33 ms vs int8 13 ms per sample at batch 1; 20 vs 8 at batch 5.
    assert (
        "| pytorch | baseline | PyTorch eager | fp32 | cpu | 4 (run's own) "
        "| 33.00 | 20.00 | — | — |" in sweep
    )
    assert (
        "| pytorch | ptq | PyTorch eager | int8 | cpu | 4 (run's own) "
        "| 13.00 | 8.00 | 2.54 | 2.50 |" in sweep
    )
    # At 1 thread int8 is compared with fp32 at 1 thread: 82.5 / 32.5 and 50 / 20.
    assert (
        "| pytorch | baseline | PyTorch eager | fp32 | cpu | 1 | 82.50 | 50.00 | — | — |" in sweep
    )
    assert (
        "| pytorch | ptq | PyTorch eager | int8 | cpu | 1 | 32.50 | 20.00 | 2.54 | 2.50 |" in sweep
    )


def test_a_variant_that_could_not_run_at_1_thread_has_no_row_and_says_why() -> None:
    reason = "no latency at 1 thread(s): the LiteRT interpreter fixes num_threads at creation"
    ptq = _ptq()
    ptq = ptq.model_copy(
        update={"latency": [lat for lat in ptq.latency if lat.threads == 4], "notes": [reason]}
    )
    metrics = make_metrics(variants=[_baseline(), ptq, _qat()])
    frame = results_frame([metrics])
    sweep = _section(markdown([metrics]), "Latency by batch size and threads")

    assert math.isnan(row(frame, "pytorch", "ptq")["latency_b1_t1_per_sample_p50_ms"])
    assert row(frame, "pytorch", "ptq")["latency_sweep_notes"] == reason
    assert "| pytorch | ptq | PyTorch eager | int8 | cpu | 4 (run's own) |" in sweep
    assert "| pytorch | ptq | PyTorch eager | int8 | cpu | 1 |" not in sweep
    assert f"**pytorch ptq:** {reason}" in sweep


def test_int8_is_not_compared_with_fp32_measured_on_another_device() -> None:
    gpu = "cuda:0 (NVIDIA H100)"
    metrics = make_metrics(variants=[_baseline(latency_device=gpu), _ptq(), _qat()])
    sweep = _section(markdown([metrics]), "Latency by batch size and threads")

    line = next(
        x
        for x in sweep.splitlines()
        if x.startswith("| pytorch | ptq | PyTorch eager | int8 | cpu | 4")
    )
    assert line.endswith(f"| not compared: fp32 on {gpu} | not compared: fp32 on {gpu} |")


def test_a_single_thread_run_has_one_row_per_variant_and_no_sweep_columns() -> None:
    def own_only(v: VariantMetrics) -> VariantMetrics:
        rows = [lat.model_copy(update={"threads": 1}) for lat in v.latency if lat.threads == 4]
        return v.model_copy(update={"latency": rows})

    metrics = make_metrics(variants=[own_only(v) for v in (_baseline(), _ptq(), _qat())])
    frame = results_frame([metrics])
    sweep = _section(markdown([metrics]), "Latency by batch size and threads")

    assert not [c for c in frame.columns if "_t1_" in c]
    assert (
        "| pytorch | ptq | PyTorch eager | int8 | cpu | 1 | 13.00 | 8.00 | 2.54 | 2.50 |" in sweep
    )
    assert "(run's own)" not in sweep


# ---------------------------------------------------------------- where the time goes


def _tensorflow_with_unavailable_int8() -> MetricsFile:
    reason = "TFLite int8 has no per-op profiler in Python"
    ptq = _ptq().model_copy(update={"profiles": [_unavailable("inference", reason)]})
    return make_metrics("tensorflow", variants=[_baseline(), ptq, _qat()])


def test_breakdown_table_gives_each_categorys_share_in_categories_order() -> None:
    metrics = [make_metrics("pytorch"), _tensorflow_with_unavailable_int8()]
    section = _section(markdown(metrics), "Where the time goes")

    labels = " | ".join(f"{label} (%)" for label in CATEGORIES.values())
    assert f"| Threads (count) | {labels} | Op self time (ms) |" in section
    # fp32 inference 70 % convolution; int8 27 % convolution, 34 % quantize/dequantize.
    assert (
        "| inference | baseline | pytorch | fp32 | cpu | 4 | 70.0 | 0.0 | 0.0 | 20.0 | 0.0 | 0.0 "
        "| 0.0 | 10.0 | 0.0 | 0.0 | 96.00 | 3 x 32 | ok |"
    ) in section
    assert (
        "| inference | ptq | pytorch | int8 | cpu | 4 | 27.0 | 0.0 | 34.0 | 25.0 | 0.0 | 0.0 "
        "| 0.0 | 14.0 | 0.0 | 0.0 | 96.00 | 3 x 32 | ok |"
    ) in section
    assert (
        "| train | baseline | pytorch | fp32 | cpu | 4 | 55.0 | 0.0 | 0.0 | 25.0 | 0.0 | 0.0 "
        "| 5.0 | 0.0 | 0.0 | 15.0 | 1,500.00 | 3 x 128 | ok |"
    ) in section
    dashes = " | ".join(["—"] * len(CATEGORIES))
    assert (
        f"| inference | ptq | tensorflow | int8 | cpu | 4 | {dashes} | — | 3 x 32 "
        "| unavailable: see Traces |"
    ) in section
    # Both frameworks' PTQ inference rows sit next to each other.
    lines = section.splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("| inference | ptq | pytorch"))
    assert lines[at + 1].startswith("| inference | ptq | tensorflow")
    assert "not comparable to the latency tables" in section
    assert "op::quantize_kernel 34.0" in section  # top ops


def test_gpu_passes_get_a_row_per_device_and_the_csv_reads_the_gpu() -> None:
    gpu_profile = _profile("baseline", "inference", device="cuda:0 (NVIDIA H100)")
    gpu_profile = gpu_profile.model_copy(
        update={
            "total_us": {"cpu": 50_000.0, "gpu": 40_000.0},
            "breakdown": [
                OpTime(category="convolution", device="gpu", time_us=36_000.0, share=0.9),
                OpTime(category="elementwise", device="gpu", time_us=4_000.0, share=0.1),
                OpTime(category="other", device="cpu", time_us=50_000.0, share=1.0),
            ],
        }
    )
    metrics = make_metrics(variants=[_baseline().model_copy(update={"profiles": [gpu_profile]})])
    frame = results_frame([metrics])
    section = _section(markdown([metrics]), "Where the time goes")

    assert "| inference | baseline | pytorch | fp32 | gpu (cuda:0 (NVIDIA H100)) | 4 | 90.0 |" in (
        section
    )
    assert "| inference | baseline | pytorch | fp32 | cpu (cuda:0 (NVIDIA H100)) | 4 | 0.0 |" in (
        section
    )
    base = row(frame, "pytorch", "baseline")
    assert base["profile_inference_device"] == "gpu"
    assert base["profile_inference_convolution_pct"] == pytest.approx(90.0)
    assert base["profile_inference_total_ms"] == pytest.approx(40.0)


def test_results_csv_has_inference_and_train_shares_per_variant(tmp_path: Path) -> None:
    write_run(tmp_path, make_metrics("pytorch"), _tensorflow_with_unavailable_int8())
    back = pd.read_csv(write_report(tmp_path).csv)

    assert len(back) == 6
    torch_ptq = back[(back["framework"] == "pytorch") & (back["variant"] == "ptq")].iloc[0]
    assert torch_ptq["profile_inference_status"] == "ok"
    assert torch_ptq["profile_inference_convolution_pct"] == pytest.approx(27.0)
    assert torch_ptq["profile_inference_quantize_pct"] == pytest.approx(34.0)
    assert torch_ptq["profile_inference_total_ms"] == pytest.approx(96.0)
    assert pd.isna(torch_ptq["profile_train_status"])  # PTQ does not train
    qat = back[(back["framework"] == "pytorch") & (back["variant"] == "qat")].iloc[0]
    assert qat["profile_train_quantize_pct"] == pytest.approx(30.0)
    tf_ptq = back[(back["framework"] == "tensorflow") & (back["variant"] == "ptq")].iloc[0]
    assert tf_ptq["profile_inference_status"] == "unavailable"
    assert math.isnan(tf_ptq["profile_inference_convolution_pct"])
    assert tf_ptq["latency_b1_t1_per_sample_p50_ms"] == pytest.approx(32.5)


def test_traces_section_shows_commands_on_disk_and_reasons_for_the_rest(tmp_path: Path) -> None:
    write_run(tmp_path, make_metrics("pytorch"), _tensorflow_with_unavailable_int8())
    (tmp_path / "pytorch" / "traces").mkdir()
    (tmp_path / "pytorch" / "traces" / "ptq-inference.pt.trace.json").write_bytes(b"{}" * 2**19)

    section = _section(write_report(tmp_path).md.read_text(), "Traces")

    assert (
        "| pytorch | ptq | inference | ok | cpu | torch.profiler | "
        "pytorch/traces/ptq-inference.pt.trace.json | 1.00 | open https://ui.perfetto.dev and "
        "load pytorch/traces/ptq-inference.pt.trace.json (or chrome://tracing) |"
    ) in section
    assert "| pytorch | baseline | train | missing |" in section
    assert (
        "| tensorflow | ptq | inference | unavailable | cpu | — | — | — | "
        "TFLite int8 has no per-op profiler in Python |"
    ) in section
    assert "harness traces RUN_DIR" in section


def test_a_run_without_profiles_says_so() -> None:
    bare = [v.model_copy(update={"profiles": []}) for v in (_baseline(), _ptq(), _qat())]
    metrics = make_metrics(variants=bare)
    report = markdown([metrics])

    assert "No profiler passes were recorded." in _section(report, "Where the time goes")
    assert "no profiler pass recorded" in _section(report, "Traces")


# ---------------------------------------------------------------- provenance


def test_provenance_names_image_uid_network_driver_spec_and_profilers() -> None:
    metrics = make_metrics().model_copy(deep=True)
    metrics.provenance = metrics.provenance.model_copy(
        update={
            "runtime": "docker image quant-harness/pytorch:0.1.0 (sha256:feed)",
            "uid": 1000,
            "network_interfaces": ["lo"],
            "gpu": "NVIDIA H100",
            "gpu_driver": "560.35",
        }
    )
    section = _section(markdown([metrics]), "Provenance")

    assert "- Runtime: docker image quant-harness/pytorch:0.1.0 (sha256:feed); uid 1000" in section
    assert "network interfaces: lo" in section
    assert "GPU NVIDIA H100, driver 560.35" in section
    assert "- Spec: `quick`, digest `abcdef0123456789`, seed 42" in section
    assert "- Profilers: torch.profiler (5 passes)" in section
    assert "digest `d1g35t`" in section


def test_an_attempt_set_aside_by_resume_is_not_a_result(tmp_path: Path) -> None:
    write_run(tmp_path, make_metrics("pytorch"))
    aside = make_metrics("pytorch", status="interrupted")
    write_metrics(tmp_path / "pytorch.incomplete-1" / "metrics.json", aside)

    metrics, problems = collect(tmp_path)

    assert [m.status for m in metrics] == ["complete"]
    assert problems == []
