"""The report's files, byte for byte, for one fixed run: refactoring the report must not
change what it says.

The fixture is a realistic compare run (both frameworks, all three variants, latency at
batch 1/8/32/128 at the run's 2 threads and again at 1 thread, profiler passes with
breakdowns and top ops, a failed and a skipped variant, memory peaks, traces partly on
disk, each variant's runtime rungs: Inductor and ExecuTorch for PyTorch, one of them
unavailable, and LiteRT fp32 for TensorFlow; each framework's support probes). Its
metrics.json files are written straight from the model, not through ``write_metrics``,
so no ``updated_at`` stamp of today leaks into the provenance: the files under
tests/golden/report/ then need no normalisation at all.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/test_report_golden.py``
and review the diff: every changed line is a change users will see.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.report import write_report
from harness_contract.metrics import (
    DatasetInfo,
    MetricsFile,
    ModelInfo,
    ProbeResult,
    Provenance,
    RungMetrics,
    SupportMatrix,
    VariantMetrics,
)
from harness_contract.metrics.census import count_ops
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

GOLDEN = Path(__file__).parent / "golden" / "report"
MIB = 2**20
BATCHES = (1, 8, 32, 128)
THREADS = 2
TFLITE_REASON = "TFLite int8 has no per-op profiler in Python"
NO_ONE_THREAD = "no latency at 1 thread(s): the LiteRT interpreter fixes num_threads at creation"


def _latency(batch: int, p50: float, threads: int, load: float) -> LatencyStats:
    return LatencyStats(
        batch_size=batch,
        device="cpu",
        threads=threads,
        n=120,
        total_s=round(p50 * 120 / 1000, 6),
        mean_ms=p50 * 1.02,
        std_ms=p50 * 0.05,
        min_ms=p50 * 0.93,
        p50_ms=p50,
        p90_ms=p50 * 1.12,
        p99_ms=p50 * 1.41,
        max_ms=p50 * 2.2,
        stop_reason="min_count_and_duration",
        samples_file=f"artifacts/latency-b{batch}-t{threads}.npy",
        load_1m=load,
    )


def _sweep(per_sample_ms: float, one_thread: bool = True) -> list[LatencyStats]:
    """The run's own threads first, then the 1-thread sweep, as the pipeline writes them;
    bigger batches amortise per-call overhead (per-sample time falls with the batch)."""
    amortise = {1: 1.0, 8: 0.62, 32: 0.55, 128: 0.53}
    own = [_latency(b, per_sample_ms * amortise[b] * b, THREADS, 0.8) for b in BATCHES]
    single = [_latency(b, per_sample_ms * amortise[b] * b * 1.8, 1, 0.9) for b in BATCHES]
    return own + (single if one_thread else [])


def _profile(
    framework: str, variant: str, kind: str, shares: dict[str, float], total_ms: float
) -> ProfileStats:
    torch_like = framework == "pytorch"
    ranked = sorted(shares, key=lambda c: -shares[c])
    total_us = total_ms * 1000
    return ProfileStats(
        kind=kind,
        status="ok",
        tool="torch.profiler" if torch_like else "tf.profiler (xplane)",
        device="cpu",
        threads=THREADS,
        batch_size=64 if kind == "train" else 32,
        steps=3,
        trace=f"traces/{variant}-{kind}" + (".pt.trace.json" if torch_like else ""),
        viewer="perfetto" if torch_like else "tensorboard",
        trace_bytes=1_500_000,
        total_us={"cpu": total_us},
        breakdown=[
            OpTime(category=c, device="cpu", time_us=total_us * s, share=s)
            for c, s in shares.items()
        ],
        top_ops=[
            TopOp(
                name=f"{'aten' if torch_like else 'tf'}::{c}_op_with_a_rather_long_name_{i}"
                + ("_padded_past_sixty_characters" if i == 0 else ""),
                category=c,
                device="cpu",
                time_us=total_us * shares[c] * 0.8,
                calls=30 + i,
                share=shares[c] * 0.8,
            )
            for i, c in enumerate(ranked[:6])
        ],
    )


def _unavailable(kind: str) -> ProfileStats:
    return ProfileStats(
        kind=kind,
        status="unavailable",
        reason=TFLITE_REASON,
        device="cpu",
        threads=THREADS,
        batch_size=32,
        steps=3,
    )


FP32_TRAIN = {"convolution": 0.52, "elementwise": 0.2, "normalization": 0.08, "data": 0.1}
FP32_TRAIN |= {"overhead": 0.04, "other": 0.06}
FP32_INFER = {"convolution": 0.7, "matmul": 0.02, "elementwise": 0.18, "memory": 0.1}
INT8_INFER = {"convolution": 0.27, "quantize": 0.34, "elementwise": 0.25, "memory": 0.14}
QAT_TRAIN = {"convolution": 0.38, "quantize": 0.3, "elementwise": 0.22, "pooling": 0.1}


def _rung(
    runtime: str,
    precision: str,
    per_sample_ms: float,
    top1: float,
    agreement: float,
    size: tuple[int, str],
    compile_s: float,
) -> RungMetrics:
    return RungMetrics(
        runtime=runtime,
        precision=precision,
        status="ok",
        accuracy=AccuracyStats(top1=top1, n=500, device="cpu", agreement_with_fp32=agreement),
        compile_s=compile_s,
        # Inductor's static compile per latency batch: a little dearer than the general one.
        compile_s_by_batch={b: round(compile_s * (1.1 + b / 256), 2) for b in BATCHES}
        if runtime == "inductor"
        else None,
        size=SizeStats(bytes=size[0], format=size[1], parameters=11_169_162),
        latency=_sweep(per_sample_ms),
    )


def _training(wall_s: float, epochs: int) -> TrainingStats:
    return TrainingStats(
        device="cpu",
        threads=THREADS,
        epochs=epochs,
        wall_s=wall_s,
        epoch_s=[wall_s / epochs] * epochs,
        images=2000 * epochs,
        images_per_s=2000 * epochs / wall_s,
        loss=[2.1 - 0.3 * i for i in range(epochs)],
    )


def _pytorch() -> MetricsFile:
    variants = [
        VariantMetrics(
            variant="baseline",
            status="ok",
            precision="fp32",
            accuracy=AccuracyStats(top1=0.6125, n=500, device="cpu"),
            training=_training(84.5, 4),
            size=SizeStats(bytes=44_690_123, format="state_dict", parameters=11_169_162),
            latency=_sweep(9.8),
            memory=MemoryStats(
                peak_rss_bytes=1900 * MIB,
                training_peak_rss_bytes=1850 * MIB,
                inference_peak_rss_bytes=1200 * MIB,
            ),
            profiles=[
                _profile("pytorch", "baseline", "train", FP32_TRAIN, 2400.0),
                _profile("pytorch", "baseline", "inference", FP32_INFER, 310.0),
            ],
            runtime="eager",
            rungs=[
                _rung("inductor", "fp32", 6.7, 0.6125, 1.0, (44_700_000, "pt2"), 4.6),
                _rung("executorch", "fp32", 6.1, 0.6125, 0.998, (44_660_000, "pte"), 6.2),
            ],
        ),
        VariantMetrics(
            variant="ptq",
            status="ok",
            precision="int8",
            accuracy=AccuracyStats(
                top1=0.6075,
                n=500,
                device="cpu",
                agreement_with_fp32=0.968,
                only_this_correct=4,
                only_fp32_correct=7,
            ),
            conversion=ConversionStats(
                flow="pt2e-x86",
                device="cpu",
                calibration_samples=256,
                calibration_s=6.25,
                conversion_s=2.31,
                quantized_ops=["quantized_decomposed.quantize_per_tensor"],
            ),
            size=SizeStats(bytes=11_304_321, format="state_dict", parameters=11_169_162),
            latency=_sweep(2.9),
            memory=MemoryStats(peak_rss_bytes=1400 * MIB, inference_peak_rss_bytes=1300 * MIB),
            profiles=[_profile("pytorch", "ptq", "inference", INT8_INFER, 120.0)],
            runtime="eager",
            ops=count_ops(
                "PT2E converted graph",
                [("conv", True, "aten.conv2d")] * 20
                + [("linear", True, "aten.linear"), ("add", False, "aten.add")]
                + [("mean", False, "aten.mean"), ("other", False, "aten.hardtanh")],
            ),
            rungs=[
                _rung("inductor", "int8", 2.7, 0.6075, 0.968, (11_320_000, "pt2"), 2.3),
                _rung("executorch", "int8", 1.5, 0.6050, 0.962, (11_220_000, "pte"), 5.8),
            ],
        ),
        VariantMetrics(
            variant="qat",
            status="ok",
            precision="int8",
            accuracy=AccuracyStats(
                top1=0.6150,
                n=500,
                device="cpu",
                agreement_with_fp32=0.982,
                only_this_correct=5,
                only_fp32_correct=4,
            ),
            training=_training(66.2, 2),
            conversion=ConversionStats(flow="pt2e-x86-qat", device="cpu", conversion_s=2.8),
            size=SizeStats(bytes=11_298_765, format="state_dict", parameters=11_169_162),
            latency=_sweep(2.7),
            memory=MemoryStats(
                peak_rss_bytes=2100 * MIB,
                training_peak_rss_bytes=2100 * MIB,
                inference_peak_rss_bytes=1350 * MIB,
            ),
            profiles=[
                _profile("pytorch", "qat", "train", QAT_TRAIN, 3300.0),
                _profile("pytorch", "qat", "inference", INT8_INFER, 115.0),
            ],
            runtime="eager",
            rungs=[
                _rung("inductor", "int8", 2.6, 0.6150, 0.982, (11_310_000, "pt2"), 2.2),
                RungMetrics(
                    runtime="executorch",
                    precision="int8",
                    status="unavailable",
                    reason="executorch is not installed; install it: pip install executorch==1.5.1",
                ),
            ],
        ),
    ]
    return _metrics("pytorch", {"torch": "2.13.0", "torchao": "0.18.0"}, variants)


def _tensorflow() -> MetricsFile:
    variants = [
        VariantMetrics(
            variant="baseline",
            status="ok",
            precision="fp32",
            accuracy=AccuracyStats(top1=0.5980, n=500, device="cpu"),
            training=_training(97.0, 4),
            size=SizeStats(
                bytes=44_760_000,
                format="keras_weights_h5",
                parameters=11_169_162,
                other_formats={"tflite_fp32": 44_670_000},
            ),
            latency=_sweep(10.0),
            memory=MemoryStats(
                peak_rss_bytes=2600 * MIB,
                training_peak_rss_bytes=2600 * MIB,
                inference_peak_rss_bytes=1700 * MIB,
            ),
            profiles=[
                _profile("tensorflow", "baseline", "train", FP32_TRAIN, 2900.0),
                _profile("tensorflow", "baseline", "inference", FP32_INFER, 350.0),
            ],
            runtime="keras",
            rungs=[_rung("litert", "fp32", 6.4, 0.5980, 0.999, (44_670_000, "tflite"), 3.1)],
        ),
        VariantMetrics(
            variant="ptq",
            status="ok",
            precision="int8",
            accuracy=AccuracyStats(top1=0.5950, n=500, device="cpu", agreement_with_fp32=0.975),
            conversion=ConversionStats(
                flow="tflite-full-int8",
                device="cpu",
                calibration_samples=256,
                calibration_s=11.5,
                conversion_s=7.4,
            ),
            size=SizeStats(bytes=11_290_000, format="tflite", parameters=11_169_162),
            latency=_sweep(1.5, one_thread=False),
            memory=MemoryStats(peak_rss_bytes=1800 * MIB, inference_peak_rss_bytes=900 * MIB),
            profiles=[_unavailable("inference")],
            notes=[NO_ONE_THREAD],
            runtime="litert",
            ops=count_ops(
                ".tflite operators",
                [("conv", True, "CONV_2D")] * 21
                + [("linear", True, "FULLY_CONNECTED"), ("add", True, "ADD")]
                + [("mean", True, "MEAN")],
            ),
        ),
        VariantMetrics(
            variant="qat",
            status="failed",
            precision="int8",
            reason="StagingError: in user code:\n  tfmot could not | quantize <Add> & gave up",
        ),
    ]
    return _metrics(
        "tensorflow", {"tensorflow": "2.21.0", "tf-keras": "2.21.0", "tfmot": "0.8.1"}, variants
    )


# Each framework's probe answers, in harness_contract.study.support.PROBES order: a mix of
# yes, no with the tool's error, not probed and timed out, as a CPU machine gives them.
ANSWERS = {
    "pytorch": [
        ("yes", "PT2E int8 ran on cpu (onednn.qconv2d_pointwise)"),
        ("not probed", "no CUDA GPU here (torch.cuda.is_available() is False)"),
        ("yes", "the int8 model runs in PyTorch itself"),
        ("yes", "torch.profiler recorded aten::conv2d under the layer names"),
        ("yes", "torch.profiler listed onednn::qconv2d_pointwise"),
        ("yes", "onednn.qconv2d_pointwise with post-op relu; no separate relu"),
        ("yes", "prepare_pt2e needed no QuantStub"),
        ("yes", "convert_pt2e gave onednn int8 ops"),
        ("yes", "a custom module quantized without annotation"),
        ("no", "RuntimeError: X86InductorQuantizer leaves aten.embedding in fp32"),
        ("yes", "forward hooks read every layer's int8 output"),
        ("timed out", "stopped after 60 s (support.timeout_s)"),
        ("no", "X86InductorQuantizer left 2 of 2 attention matmuls in float"),
        ("no", "X86InductorQuantizer left 1 of 1 softmax in float"),
        ("no", "X86InductorQuantizer left 1 of 1 LayerNorm in float"),
        ("yes", "torch.profiler traced aten::matmul, aten::softmax, aten::layer_norm"),
        ("yes", "prepare_qat_pt2e: 3 of 3 linear layers int8; in float: layer_norm, softmax"),
    ],
    "tensorflow": [
        ("yes", "LiteRT ran the int8 .tflite"),
        ("not probed", "no GPU visible to TensorFlow"),
        ("no", "TensorFlow cannot run an int8 .tflite itself: it needs the LiteRT interpreter"),
        ("yes", "tf.profiler traced a training step"),
        ("no", "the LiteRT interpreter has no op-level profiler in Python"),
        ("yes", "CONV_2D with fused RELU; no separate RELU op"),
        ("yes", "the converter needed no annotation"),
        ("yes", "the tfmot QAT model converted to int8"),
        ("no", "RuntimeError: Layer custom:Scale is not supported"),
        ("no", "GATHER stayed float32"),
        ("yes", "experimental_preserve_all_tensors kept 61 int8 tensors"),
        ("yes", "the .tflite reloaded with identical outputs"),
        ("yes", "BATCH_MATMUL on int8"),
        ("yes", "SOFTMAX on int8"),
        ("yes", "LayerNorm decomposed, all int8: MEAN, SQUARED_DIFFERENCE, RSQRT"),
        ("no", "the LiteRT interpreter has no profiler hook: benchmark_model needed"),
        ("no", "RuntimeError: Layer norm:LayerNormalization is not supported"),
    ],
}


def _support(framework: str, versions: dict[str, str]) -> SupportMatrix:
    from harness_contract.study.support import PROBES

    answers = zip(PROBES, ANSWERS[framework], strict=True)
    probes = [
        ProbeResult(
            probe=p.slug,
            area=p.area,
            question=p.question,
            outcome=outcome,
            detail=detail,
            seconds=60.0 if outcome == "timed out" else 0.4,
        )
        for p, (outcome, detail) in answers
    ]
    return SupportMatrix(versions=versions, timeout_s=60.0, probes=probes)


def _metrics(framework: str, versions: dict[str, str], variants: list) -> MetricsFile:
    return MetricsFile(
        framework=framework,
        status="complete",
        run_id="20261129-093000-smoke",
        spec_name="smoke",
        spec_digest="0123456789abcdef",
        seed=0,
        started_at="2026-11-29T09:30:00+00:00",
        updated_at="2026-11-29T09:41:07+00:00",
        initial_weights="shared:5eed5eed",
        model=ModelInfo(arch="resnet18", title="ResNet18 (nobn, width x1)", parameters=11_169_162),
        provenance=Provenance(
            harness_version="0.1.0",
            framework_versions=versions,
            python="3.11.9 (main, Apr  2 2026)\n[GCC 12.2.0]",
            platform="Linux-6.8-x86_64-with-glibc2.36",
            hostname="bench-1",
            runtime="local (/work/main/.venv/bin/python)",
            uid=1000,
            network_interfaces=["lo", "eth0"],
            cpu_model="AMD EPYC 9B14",
            cpu_flags=["avx2", "avx512f", "avx512_vnni", "avx512_bf16"],
            cpu_count=2,
            threads=THREADS,
            device="cpu",
        ),
        dataset=DatasetInfo(
            path="/home/user/.cache/quant-harness/synthetic-cifar10",
            kind="synthetic",
            train_images=2000,
            test_images=500,
            digest="d4t4d1g3st",
        ),
        variants={v.variant: v for v in variants},
        support=_support(framework, versions),
    )


def build_run(run_dir: Path) -> Path:
    """The fixture run directory: metrics.json, runner.log and most traces on disk."""
    for m in (_pytorch(), _tensorflow()):
        fw = run_dir / m.framework
        fw.mkdir(parents=True)
        (fw / "metrics.json").write_text(json.dumps(m.model_dump(mode="json"), indent=2))
        (fw / "runner.log").write_text(f"{m.framework} runner finished\n")
    (run_dir / "spec.json").write_text("{}")
    torch_traces = run_dir / "pytorch" / "traces"
    torch_traces.mkdir()
    # qat-inference is recorded but left off disk: the report must say "missing".
    names = ("baseline-train", "baseline-inference", "ptq-inference", "qat-train")
    for i, name in enumerate(names):
        (torch_traces / f"{name}.pt.trace.json").write_bytes(b"{}" * (40_000 * (i + 1)))
    for name in ("baseline-train", "baseline-inference"):
        plugin = run_dir / "tensorflow" / "traces" / name / "plugins" / "profile" / "2026_11_29"
        plugin.mkdir(parents=True)
        (plugin / "host.xplane.pb").write_bytes(b"x" * 300_000)
    return run_dir


def _outputs(run_dir: Path) -> dict[str, str]:
    names = ["report.md", "report.html", "results.csv", "support.md"]
    names += sorted(f"figures/{p.name}" for p in (run_dir / "figures").glob("*.svg"))
    return {name: (run_dir / name).read_text(encoding="utf-8") for name in names}


def test_the_report_of_a_fixed_run_is_unchanged_byte_for_byte(tmp_path: Path) -> None:
    run_dir = build_run(tmp_path / "20261129-093000-smoke")
    write_report(run_dir)
    outputs = _outputs(run_dir)

    if os.environ.get("UPDATE_GOLDEN"):
        for old in GOLDEN.rglob("*.*"):
            old.unlink()
        for name, text in outputs.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_text(text, encoding="utf-8")
        pytest.skip("golden files rewritten: review the diff")
    expected = sorted(str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*.*"))
    assert sorted(outputs) == expected, "a file was added to or dropped from the report"
    for name, text in outputs.items():
        assert text == (GOLDEN / name).read_text(encoding="utf-8"), f"{name} changed"
