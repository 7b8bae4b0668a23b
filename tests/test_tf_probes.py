"""TensorFlow's support matrix: every probe of harness_contract.study.support.PROBES answered by
tf_runner.probes at the installed versions, through the real bounded child process."""

from __future__ import annotations

import time

import pytest

import tf_runner  # noqa: F401 - sets TF_USE_LEGACY_KERAS before TensorFlow is first imported
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import SupportMatrix
from harness_contract.spec.frameworks import SupportSpec
from harness_contract.study.support import PROBES, probe_support

pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
pytest.importorskip("tensorflow_model_optimization", reason="tfmot is not installed")

from tf_runner import probes  # noqa: E402
from tf_runner.runner import TFFramework  # noqa: E402

# The whole set should take a few seconds; the bound only catches a hang.
TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> SupportMatrix:
    out = FrameworkDir(tmp_path_factory.mktemp("tf-probes") / "tensorflow")
    out.path.mkdir()
    started = time.perf_counter()
    result = probe_support(TFFramework(), SupportSpec(timeout_s=TIMEOUT_S), out)
    elapsed = time.perf_counter() - started
    assert result is not None
    print(f"\nTensorFlow support probes: {elapsed:.1f} s in all (child start-up included)")
    for p in result.probes:
        print(f"  {p.probe:18} {p.outcome:10} {p.seconds:6.2f} s  {p.detail}")
    return result


def test_every_table_iv_probe_has_a_tensorflow_probe() -> None:
    assert set(probes.PROBES) == {p.slug for p in PROBES}


def test_every_probe_has_an_outcome_and_a_detail(matrix: SupportMatrix) -> None:
    assert [p.probe for p in matrix.probes] == [p.slug for p in PROBES]
    for p in matrix.probes:
        assert p.outcome in ("yes", "no", "not probed"), (p.probe, p.outcome, p.detail)
        assert p.detail and len(p.detail) > 20, p.probe  # says what it saw, or the error
    assert matrix.versions["tensorflow"] and matrix.versions["ai_edge_litert"]


def test_what_these_versions_can_do(matrix: SupportMatrix) -> None:
    got = {p.probe: p for p in matrix.probes}
    for slug in ("int8_cpu", "auto_fusion", "auto_setup", "qat_convert", "int8_export"):
        assert got[slug].outcome == "yes", (slug, got[slug].detail)
    assert "CONV_2D[int8]" in got["int8_cpu"].detail
    assert "no RELU op" in got["auto_fusion"].detail
    assert got["per_layer_access"].outcome == "yes" and "CONV_2D" in got["per_layer_access"].detail


def test_the_papers_annotation_finding_still_holds_with_the_error(
    matrix: SupportMatrix,
) -> None:
    # The paper: tfmot "requires special layer annotation" for a custom layer.
    custom = next(p for p in matrix.probes if p.probe == "custom_layer")
    assert custom.outcome == "no" and "quantize_scope" in custom.detail


def test_int8_native_and_int8_profiler_name_why_not(matrix: SupportMatrix) -> None:
    got = {p.probe: p for p in matrix.probes}
    assert got["int8_native"].outcome == "no" and "QuantizedConv2D" in got["int8_native"].detail
    assert got["profiler_int8"].outcome == "no"
    assert "benchmark_model" in got["profiler_int8"].detail


def test_int8_gpu_is_not_probed_without_a_gpu(matrix: SupportMatrix) -> None:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    gpu = next(p for p in matrix.probes if p.probe == "int8_gpu")
    assert gpu.outcome == "not probed" and "no GPU" in gpu.detail


def test_full_int8_tflite_quantizes_the_attention_block_and_tfmot_refuses_layer_norm(
    matrix: SupportMatrix,
) -> None:
    got = {p.probe: p for p in matrix.probes}
    assert got["int8_attention_matmul"].outcome == "yes"
    assert "BATCH_MATMUL on int8" in got["int8_attention_matmul"].detail
    assert got["int8_softmax"].outcome == "yes" and "SOFTMAX on int8" in got["int8_softmax"].detail
    assert got["int8_layer_norm"].outcome == "yes" and "RSQRT" in got["int8_layer_norm"].detail
    profiled = got["profiler_attention"]
    assert profiled.outcome == "no" and "benchmark_model" in profiled.detail
    # The finding the issue names: tfmot's quantize_model refuses LayerNormalization.
    outcome, detail = got["qat_transformer"].outcome, got["qat_transformer"].detail
    assert outcome == "no" and "LayerNormalization" in detail and "is not supported" in detail
