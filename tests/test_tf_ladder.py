"""TensorFlow's runtime ladder: the baseline as an fp32 .tflite on LiteRT, converted once
and measured through the same runner methods as every other model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tf_runner  # noqa: F401 - sets TF_USE_LEGACY_KERAS before TensorFlow is first imported
from harness_contract.data.cifar import Cifar10, load_cifar10
from harness_contract.model.weights import initial_weights
from harness_contract.spec import build_spec
from harness_contract.study.framework import DeviceInfo, RungInputs, RungUnavailable

pytest.importorskip("tensorflow", reason="TensorFlow is not installed")

from tf_runner import litert  # noqa: E402
from tf_runner.litert import TFLiteModel  # noqa: E402
from tf_runner.runner import TFFramework  # noqa: E402

THREADS = 2
CPU = DeviceInfo(train_device="cpu")


def _framework(*overrides: str) -> TFFramework:
    spec = build_spec(
        "smoke",
        overrides=[
            "device=cpu",
            "model.width_multiplier=0.125",
            "model.zero_init_residual=false",  # every branch live: a real function to match
            *overrides,
        ],
    )
    fw = TFFramework()
    fw.setup(spec, threads=THREADS)
    return fw


def _inputs(variant: str, model: Any) -> RungInputs:
    return RungInputs(
        variant=variant,
        model=model,
        fp32=model,
        calibration=[],
        fine_tune=lambda m: (m, None),
        max_batch=128,
    )


@pytest.fixture(scope="module")
def data(synthetic_data: Path) -> Cifar10:
    return load_cifar10(synthetic_data, 64, 64)


@pytest.fixture(scope="module")
def fw() -> TFFramework:
    return _framework()


@pytest.fixture(scope="module")
def keras_model(fw: TFFramework) -> Any:
    return fw.build(initial_weights(fw.spec.model, fw.spec.seed))


@pytest.fixture(scope="module")
def lowered(fw: TFFramework, keras_model: Any) -> Any:
    return fw.lower("litert", _inputs("baseline", keras_model))


def test_litert_rung_is_the_fp32_model_with_float_input_and_output(lowered: Any) -> None:
    model = lowered.model
    assert isinstance(model, TFLiteModel) and model.precision == "fp32"
    interpreter = model.interpreter(1)
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    assert litert.quantized_ops(model.tflite) == []  # no int8 kernel anywhere
    assert lowered.compile_s > 0
    assert any("LiteRT interpreter" in n and f"num_threads={THREADS}" in n for n in lowered.notes)


def test_litert_fp32_computes_what_keras_computes(
    fw: TFFramework, keras_model: Any, lowered: Any, data: Cifar10
) -> None:
    keras_logits = fw.predict(keras_model, data.test_images)
    litert_logits = fw.predict(lowered.model, data.test_images)
    assert litert_logits.shape == keras_logits.shape == (64, 10)
    assert np.std(keras_logits - keras_logits.mean(0)) > 0, "logits ignore the input"
    np.testing.assert_allclose(litert_logits, keras_logits, rtol=1e-3, atol=1e-4)
    assert fw.device_of(lowered.model) == "cpu"


@pytest.mark.parametrize("threads", [1, THREADS])
def test_litert_fp32_runs_at_any_batch_and_thread_count(
    fw: TFFramework, lowered: Any, data: Cifar10, threads: int
) -> None:
    with fw.threads_for(lowered.model, threads):
        for batch in (1, 5):
            call, device = fw.latency_call(lowered.model, data.test_images[:batch])
            call()
            assert device == "cpu"
            assert (batch, threads) in lowered.model._interpreters


def test_litert_rung_saves_the_fp32_tflite_and_the_baseline_keeps_only_its_size(
    fw: TFFramework, keras_model: Any, lowered: Any, tmp_path: Path
) -> None:
    base = fw.save(keras_model, tmp_path, "baseline")
    rung = fw.save(lowered.model, tmp_path, "baseline-litert")
    # The rung writes the fp32 .tflite; the baseline names its size without a second copy.
    assert base.files == (tmp_path / "baseline.weights.h5",)
    assert rung.files == (tmp_path / "baseline-litert.tflite",)
    assert rung.size.format == "tflite" and rung.size.file == "baseline-litert.tflite"
    assert rung.size.bytes == (tmp_path / "baseline-litert.tflite").stat().st_size
    assert base.size.other_formats["tflite_fp32"] == rung.size.bytes
    assert rung.size.parameters == base.size.parameters == fw.net.parameter_count()
    assert "saved by its LiteRT rung" in " ".join(fw.variant_notes("baseline", CPU))


def test_the_fp32_model_is_converted_once_for_its_size_and_its_rung(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[int] = []
    convert = litert.fp32_tflite

    def counting(model: Any, threads: int) -> tuple[TFLiteModel, float]:
        calls.append(threads)
        return convert(model, threads)

    monkeypatch.setattr(litert, "fp32_tflite", counting)
    fw = _framework()
    model = fw.build(initial_weights(fw.spec.model, fw.spec.seed))
    saved = fw.save(model, tmp_path, "baseline")
    lowered = fw.lower("litert", _inputs("baseline", model))
    assert calls == [THREADS]
    assert saved.size.other_formats["tflite_fp32"] == len(lowered.model.tflite)


def test_without_the_litert_rung_the_baseline_writes_the_fp32_tflite_itself(
    tmp_path: Path,
) -> None:
    fw = _framework("tensorflow.runtimes=[]")
    model = fw.build(initial_weights(fw.spec.model, fw.spec.seed))
    saved = fw.save(model, tmp_path, "baseline")
    tflite = tmp_path / "baseline.tflite"
    assert saved.files == (tmp_path / "baseline.weights.h5", tflite)
    assert saved.size.other_formats["tflite_fp32"] == tflite.stat().st_size
    assert "saved beside the weights" in " ".join(fw.variant_notes("baseline", CPU))


@pytest.mark.parametrize(
    ("runtime", "variant"), [("litert", "ptq"), ("litert", "qat"), ("inductor", "baseline")]
)
def test_a_rung_tensorflow_does_not_have_is_unavailable_with_its_reason(
    fw: TFFramework, keras_model: Any, runtime: str, variant: str
) -> None:
    with pytest.raises(RungUnavailable, match=f"no {runtime} rung for {variant}"):
        fw.lower(runtime, _inputs(variant, keras_model))


def test_int8_io_still_quantizes_and_float_io_passes_through() -> None:
    int8 = {"dtype": np.int8, "quantization": (0.5, -3)}
    fp32 = {"dtype": np.float32, "quantization": (0.0, 0)}
    x = np.array([[-1.0, 0.26, 70.0]], np.float64)
    np.testing.assert_array_equal(litert.quantize_input(x, int8), [[-5, -2, 127]])
    np.testing.assert_array_equal(litert.quantize_input(x, fp32), x.astype(np.float32))
    assert litert.quantize_input(x, fp32).dtype == np.float32
    q = np.array([[-5, 127]], np.int8)
    np.testing.assert_array_equal(litert.dequantize_output(q, int8), [[-1.0, 65.0]])
    np.testing.assert_array_equal(litert.dequantize_output(x, fp32), x.astype(np.float32))
