"""The TensorFlow runner: sizes, int8 conversion through TFLite, QAT, the entrypoint contract."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tf_runner  # noqa: F401 - sets TF_USE_LEGACY_KERAS before TensorFlow is first imported
from harness_contract import events
from harness_contract.data.cifar import Cifar10, load_cifar10
from harness_contract.fs.digests import sha256_file
from harness_contract.metrics import MetricsFile, read_metrics
from harness_contract.model.architecture import resnet18
from harness_contract.model.weights import initial_weights
from harness_contract.spec import ExperimentSpec, build_spec
from harness_contract.study.framework import Quantized, Unsupported
from harness_contract.versions import pinned

tf = pytest.importorskip(
    "tensorflow", reason="TensorFlow is not installed: pip install -e '.[tensorflow]'"
)
pytest.importorskip("tensorflow_model_optimization", reason="tfmot is not installed")

import tf_keras as keras  # noqa: E402

from tf_runner.litert import TFLiteModel  # noqa: E402
from tf_runner.quantize import prepare_qat  # noqa: E402
from tf_runner.runner import TFFramework  # noqa: E402

MIB = 2**20
THREADS = 2
RUNNER_TIMEOUT_S = 300


# ---------------------------------------------------------------- entrypoint, end to end

# Sized so the quarter-width network clearly learns the synthetic classes (~0.95 top-1
# measured; chance is 0.1) in ~100 steps, and the whole run takes well under a minute.
E2E = [
    "device=cpu",
    f"measure.threads={THREADS}",
    "data.train_limit=800",
    "data.test_limit=200",
    "train.epochs=4",
    "train.batch_size=32",
    "train.warmup_epochs=0.25",
    "qat.epochs=1",
    "qat.batch_size=32",
    "ptq.calibration_samples=32",
    "measure.eval_batch_size=64",  # 200 test images: the last eval batch is short
    "measure.latency.batch_sizes=[1,128]",
    "measure.rung_variants=[baseline,ptq]",  # the smoke preset runs PTQ's rungs only
    "measure.latency.min_count=5",
    "measure.latency.min_seconds=0",
    "measure.latency.warmup_count=1",
    "measure.latency.warmup_seconds=0",
    # Profiling and the 1-thread sweep are covered by test_tf_profile.py.
    "measure.latency.thread_sweep=false",
    "measure.profile.enabled=false",
]


def _runner(spec: Path, data: Path, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "tf_runner", "--spec", str(spec), "--data", str(data)]
    return subprocess.run(
        [*cmd, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=RUNNER_TIMEOUT_S,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@dataclass(frozen=True)
class Completed:
    proc: subprocess.CompletedProcess[str]
    out: Path
    metrics: MetricsFile


@pytest.fixture(scope="module")
def completed(synthetic_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Completed:
    root = tmp_path_factory.mktemp("tf-e2e")
    spec = root / "spec.json"
    spec.write_text(build_spec("smoke", overrides=E2E).to_json())
    out = root / "run" / "tensorflow"
    proc = _runner(spec, synthetic_data, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Completed(proc, out, read_metrics(out / "metrics.json"))


@pytest.mark.slow
def test_runner_completes_all_three_variants(completed: Completed) -> None:
    m = completed.metrics
    assert m.status == "complete" and m.framework == "tensorflow"
    assert {name: v.status for name, v in m.variants.items()} == dict.fromkeys(
        ("baseline", "ptq", "qat"), "ok"
    )
    kinds = [e["event"] for e in map(events.parse, completed.proc.stdout.splitlines()) if e]
    assert kinds[0] == "start" and kinds[-1] == "done"


@pytest.mark.slow
def test_baseline_learns_the_synthetic_classes(completed: Completed) -> None:
    base = completed.metrics.variants["baseline"]
    assert base.accuracy.top1 >= 0.6  # chance is 0.1
    assert base.accuracy.n == 200 and base.accuracy.device == "cpu"
    assert base.training.loss[-1] < base.training.loss[0]
    assert base.training.epochs == 4 and base.training.device == "cpu"


@pytest.mark.slow
def test_int8_variants_keep_the_baselines_predictions(completed: Completed) -> None:
    variants = completed.metrics.variants
    base = variants["baseline"].accuracy.top1
    ptq, qat = variants["ptq"].accuracy, variants["qat"].accuracy
    assert ptq.top1 >= base - 0.05 and ptq.agreement_with_fp32 > 0.8
    # tfmot starts activation ranges at [-6, 6] and moves them 0.1% a step, so one short
    # QAT epoch costs a little accuracy (see the qat notes).
    assert qat.top1 >= base - 0.15 and qat.agreement_with_fp32 > 0.8
    assert ptq.device == qat.device == "cpu"


@pytest.mark.slow
def test_int8_tflite_is_a_quarter_of_the_fp32_tflite(completed: Completed) -> None:
    variants, artifacts = completed.metrics.variants, completed.out / "artifacts"
    base = variants["baseline"].size
    assert base.format == "keras_weights_h5" and base.file == "baseline.weights.h5"
    assert (artifacts / base.file).stat().st_size == base.bytes
    fp32_tflite = base.other_formats["tflite_fp32"]
    # The LiteRT rung saved that fp32 .tflite; the baseline names its size, no second copy.
    assert (artifacts / "baseline-litert.tflite").stat().st_size == fp32_tflite
    assert not (artifacts / "baseline.tflite").exists()
    for name in ("ptq", "qat"):
        size = variants[name].size
        assert size.format == "tflite" and (artifacts / size.file).stat().st_size == size.bytes
        assert size.bytes < 0.35 * fp32_tflite, (name, size.bytes, fp32_tflite)
        assert size.parameters == base.parameters


@pytest.mark.slow
def test_conversions_are_proven_int8(completed: Completed) -> None:
    ptq = completed.metrics.variants["ptq"].conversion
    qat = completed.metrics.variants["qat"].conversion
    for conv in (ptq, qat):
        assert {"CONV_2D[int8]", "FULLY_CONNECTED[int8]", "ADD[int8]"} <= set(conv.quantized_ops)
        assert conv.device == "cpu" and conv.conversion_s > 0
    assert ptq.calibration_samples == 32 and ptq.calibration_s > 0
    assert qat.calibration_s is None


@pytest.mark.slow
def test_latency_is_measured_at_both_batch_sizes_in_order(completed: Completed) -> None:
    for name, variant in completed.metrics.variants.items():
        assert [lat.batch_size for lat in variant.latency] == [1, 128], name
        for lat in variant.latency:
            assert lat.n >= 5 and lat.threads == THREADS and lat.device == "cpu"
            assert 0 < lat.min_ms <= lat.p50_ms <= lat.p90_ms <= lat.p99_ms <= lat.max_ms
            samples = np.load(completed.out / lat.samples_file)
            assert samples.size == lat.n


@pytest.mark.slow
def test_versions_and_int8_notes_name_the_interpreter(completed: Completed) -> None:
    versions = completed.metrics.provenance.framework_versions
    for package, version in pinned("tensorflow", required_only=True).items():
        major_minor = version.rsplit(".", 1)[0] + "."
        assert versions[package.replace("-", "_")].startswith(major_minor), package
    assert versions["tflite_interpreter"] == "ai_edge_litert.interpreter"
    assert "HDF5" in versions["h5py"] and "numpy" in versions
    for name in ("ptq", "qat"):
        notes = " ".join(completed.metrics.variants[name].notes)
        assert "LiteRT interpreter" in notes and f"num_threads={THREADS}" in notes


@pytest.mark.slow
def test_every_saved_model_file_is_an_artifact_with_its_digest(completed: Completed) -> None:
    variants = completed.metrics.variants
    files = {name: [a.file for a in v.artifacts] for name, v in variants.items()}
    assert files == {
        "baseline": ["artifacts/baseline.weights.h5"],
        "ptq": ["artifacts/ptq.tflite"],
        "qat": ["artifacts/qat.tflite"],
    }
    rung = variants["baseline"].rungs[0]
    assert [a.file for a in rung.artifacts] == ["artifacts/baseline-litert.tflite"]
    every = [*(a for v in variants.values() for a in v.artifacts), *rung.artifacts]
    for artifact in every:
        path = completed.out / artifact.file
        assert artifact.sha256 == sha256_file(path) and artifact.bytes == path.stat().st_size


@pytest.mark.slow
def test_the_baseline_runs_on_litert_too_and_int8_lives_there(completed: Completed) -> None:
    variants = completed.metrics.variants
    base = variants["baseline"]
    assert base.runtime == "keras"
    assert variants["ptq"].runtime == variants["qat"].runtime == "litert"
    assert [(r.runtime, r.precision, r.status) for r in base.rungs] == [("litert", "fp32", "ok")]
    assert variants["ptq"].rungs == variants["qat"].rungs == []
    rung = base.rungs[0]
    # The same fp32 model on another runtime: the same predictions, nearly everywhere.
    assert rung.accuracy.agreement_with_fp32 >= 0.99
    assert abs(rung.accuracy.top1 - base.accuracy.top1) <= 0.01
    assert rung.compile_s > 0 and rung.size.format == "tflite"
    assert [(lat.batch_size, lat.threads, lat.device) for lat in rung.latency] == [
        (1, THREADS, "cpu"),
        (128, THREADS, "cpu"),
    ]
    assert any("LiteRT interpreter" in n for n in rung.notes)


@pytest.mark.slow
def test_op_determinism_is_on_for_a_cpu_run_and_recorded(completed: Completed) -> None:
    switches = completed.metrics.provenance.determinism
    assert switches["tf.config.experimental.enable_op_determinism"] == "True"
    assert switches["TF_DETERMINISTIC_OPS"] == "1" and switches["seed"].startswith("0 ")
    assert "TF_ENABLE_ONEDNN_OPTS" in switches


def test_device_cuda_without_a_gpu_exits_2_with_one_error_line(
    synthetic_data: Path, tmp_path: Path
) -> None:
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    spec = tmp_path / "spec.json"
    spec.write_text(build_spec("smoke", overrides=["device=cuda", "data.test_limit=10"]).to_json())
    proc = _runner(spec, synthetic_data, tmp_path / "out")
    assert proc.returncode == 2
    # TensorFlow's own start-up logs may precede it; ours is one line, and the last.
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and proc.stderr.rstrip().endswith(errors[0])
    assert "cuda" in errors[0] and "no GPU" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "metrics.json").exists()


# ---------------------------------------------------------------- int8 behaviour, small model


def _framework(preset: str, *overrides: str) -> tuple[TFFramework, ExperimentSpec]:
    spec = build_spec(preset, overrides=["device=cpu", *overrides])
    fw = TFFramework()
    fw.setup(spec, threads=THREADS)
    return fw, spec


@pytest.fixture(scope="module")
def small_data(synthetic_data: Path) -> Cifar10:
    return load_cifar10(synthetic_data, 200, 128)


@pytest.fixture(scope="module")
def small_ptq(small_data: Cifar10) -> tuple[TFFramework, Any, Quantized]:
    # zero_init_residual=false: every residual branch is live, so the untrained network
    # computes a non-trivial function of its input (a fair test of int8 fidelity).
    fw, spec = _framework("smoke", "model.zero_init_residual=false")
    model = fw.build(initial_weights(spec.model, spec.seed))
    calibration = [small_data.train_images[i : i + 16] for i in range(0, 32, 16)]
    return fw, model, fw.quantize_ptq(model, calibration)


def _centered(logits: np.ndarray) -> np.ndarray:
    """The input-dependent part of the logits (a constant bias cannot fake agreement)."""
    return (logits - logits.mean(axis=0, keepdims=True)).ravel()


def test_int8_logits_track_fp32_logits(small_ptq: tuple, small_data: Cifar10) -> None:
    fw, model, q = small_ptq
    fp32 = fw.predict(model, small_data.test_images)
    int8 = fw.predict(q.model, small_data.test_images)
    assert int8.shape == fp32.shape == (128, 10) and np.isfinite(int8).all()
    assert np.std(_centered(fp32)) > 0, "fp32 logits do not depend on the input"
    assert (fp32.argmax(1) == int8.argmax(1)).mean() >= 0.8
    assert np.corrcoef(_centered(fp32), _centered(int8))[0, 1] > 0.9
    assert q.conversion.calibration_samples == 32


@pytest.mark.parametrize("batch_size", [1, 5, 128])
def test_int8_model_accepts_any_batch_size(
    small_ptq: tuple, small_data: Cifar10, batch_size: int
) -> None:
    fw, _, q = small_ptq
    images = small_data.test_images
    reference = fw.predict(q.model, images)
    logits = fw.predict(q.model, images[:batch_size])
    assert logits.shape == (batch_size, 10)
    # A row's result must not depend on the batch it came in (same int8 arithmetic).
    np.testing.assert_allclose(logits, reference[:batch_size], rtol=0, atol=1e-6)
    call, device = fw.latency_call(q.model, images[:batch_size])
    call()
    assert device == "cpu" and fw.device_of(q.model) == "cpu"


def test_the_int8_model_really_takes_and_returns_int8(small_ptq: tuple) -> None:
    q: TFLiteModel = small_ptq[2].model
    interpreter = q.interpreter(1)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8


def test_qat_copy_leaves_the_fp32_model_untouched(small_ptq: tuple, small_data: Cifar10) -> None:
    fw, model, _ = small_ptq
    before = [w.copy() for w in model.get_weights()]
    qat = fw.prepare_qat(model)
    trainer = fw.trainer(qat, fw.spec.qat)
    trainer.step(small_data.train_images[:16], small_data.train_labels[:16], 0.01)
    loss, _ = trainer.end_epoch()
    assert np.isfinite(loss)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    qat_params = sum(int(np.prod(v.shape)) for v in qat.trainable_weights)
    assert qat_params == fw.net.parameter_count()  # tfmot's ranges are not trained by SGD


def test_a_layer_tfmot_cannot_quantize_is_named() -> None:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.LayerNormalization(name="odd_norm")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
    # a framework limit, recorded as the QAT variant "unsupported" (not a failure)
    with pytest.raises(Unsupported, match="odd_norm") as info:
        prepare_qat(model, "/CPU:0")
    assert "\n" not in info.value.error and "dense_only" in info.value.workaround


# ---------------------------------------------------------------- Table I sizes


@dataclass(frozen=True)
class FullWidth:
    fw: TFFramework
    model: Any
    ptq: Quantized
    out: Path


@pytest.fixture(scope="module")
def full_width(tmp_path_factory: pytest.TempPathFactory) -> FullWidth:
    """The paper's model (full width, no BN), PTQ-converted with two batches of 4 images.

    Residual branches are not zero-initialized here: TFLite stores identical constant
    buffers once, so the all-zero branch convs of a Fixup-style start would shrink the
    file by ~12 MiB. Trained weights are never identical, so this is the trained size.
    """
    fw, spec = _framework("paper", "model.zero_init_residual=false")
    model = fw.build(initial_weights(spec.model, spec.seed))
    rng = np.random.default_rng(0)
    calibration = [rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8) for _ in range(2)]
    q = fw.quantize_ptq(model, calibration)
    return FullWidth(fw, model, q, tmp_path_factory.mktemp("tf-full-width"))


@pytest.mark.slow
def test_full_width_keras_weights_and_fp32_tflite_are_42_6_mib(full_width: FullWidth) -> None:
    saved = full_width.fw.save(full_width.model, full_width.out, "baseline")
    size = saved.size
    out = full_width.out
    # The LiteRT rung (on by default) saves the fp32 .tflite; the baseline keeps its size.
    assert saved.files == (out / "baseline.weights.h5",)
    assert size.parameters == resnet18(full_width.fw.spec.model).parameter_count() == 11_169_162
    assert size.bytes / MIB == pytest.approx(42.69, abs=0.3)
    assert size.other_formats["tflite_fp32"] / MIB == pytest.approx(42.60, abs=0.3)


@pytest.mark.slow
def test_full_width_int8_tflite_is_10_8_mib(full_width: FullWidth) -> None:
    saved = full_width.fw.save(full_width.ptq.model, full_width.out, "ptq")
    size = saved.size
    assert saved.files == (full_width.out / "ptq.tflite",) and size.format == "tflite"
    assert size.bytes / MIB == pytest.approx(10.77, abs=0.3)
    assert "CONV_2D[int8]" in full_width.ptq.conversion.quantized_ops
