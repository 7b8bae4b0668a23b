"""The TensorFlow per-layer probe: every canonical layer mapped in the PTQ and QAT .tflite,
own error measured directly and equal to the QuantizationDebugger's, and keep-float
(selective quantization for PTQ, tfmot annotation for QAT) really leaves the layer in
float."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tf_runner  # noqa: F401 - sets TF_USE_LEGACY_KERAS before TensorFlow is first imported

pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_model_optimization")

from harness_contract.layers.analysis import Analysis, RequantizeInputs  # noqa: E402
from harness_contract.layers.error import canonical_layers, sqnr_db  # noqa: E402
from harness_contract.spec.analysis import AnalysisSpec  # noqa: E402
from tests.layers_fixtures import small_data, small_spec, varied_weights  # noqa: E402
from tf_runner.layers import TFLayerProbe, output_point  # noqa: E402
from tf_runner.litert import interpreter_class  # noqa: E402
from tf_runner.runner import TFFramework  # noqa: E402

# Each test builds, quantizes and probes a real model: the slow tier.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning"),
]


def _setup(tmp_path_factory: pytest.TempPathFactory):
    spec = small_spec()
    fw = TFFramework()
    fw.setup(spec, threads=2)
    data = small_data(Path(tmp_path_factory.getbasetemp()) / "layers-data")
    fp32 = fw.build(varied_weights(spec))
    return fw, spec, data, fp32, [data.train_images[:32]]


def _float_convs(blob: bytes) -> set[str]:
    """Output tensor names of the CONV_2D ops that run in float."""
    cls, _ = interpreter_class()
    interp = cls(model_content=blob)
    details = {t["index"]: t for t in interp.get_tensor_details()}
    return {
        details[op["outputs"][0]]["name"]
        for op in interp._get_ops_details()
        if op["op_name"] == "CONV_2D" and details[op["outputs"][0]]["dtype"] == np.float32
    }


def _float_conv_inputs(blob: bytes) -> list[tuple[str, type]]:
    """For each float CONV_2D: the op that makes its input, and that op's input dtype."""
    cls, _ = interpreter_class()
    interp = cls(model_content=blob)
    details = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    producer = {op["outputs"][0]: op for op in ops}
    found = []
    for op in ops:
        if op["op_name"] == "CONV_2D" and details[op["outputs"][0]]["dtype"] == np.float32:
            made_by = producer[op["inputs"][0]]
            found.append((made_by["op_name"], details[made_by["inputs"][0]]["dtype"]))
    return found


def test_point_layers_are_the_keras_layers_after_each_conv() -> None:
    net_layers = {x.name: x for x in canonical_layers(_net())}
    assert output_point(net_layers["stem"]) == "stem_relu"
    assert output_point(net_layers["stages.1.0.conv1"]) == "stages_1_0_relu1"
    assert output_point(net_layers["stages.1.0.shortcut"]) == "stages_1_0_shortcut"
    assert output_point(net_layers["fc"]) == "fc"


def _net():
    from harness_contract.model.architecture import resnet18

    return resnet18(small_spec().model)


def test_ptq_every_layer_mapped_with_the_debuggers_own_error_and_keep_float(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    int8 = fw.quantize_ptq(fp32, calibration).model
    analysis = Analysis(
        fw, TFLayerProbe(fw), spec, AnalysisSpec(images=32, keep_float=[1]), data, threads=2
    )
    inputs = RequantizeInputs(calibration, lambda m: (m, None))
    result = analysis.analyse("ptq", int8, fp32, inputs)
    assert result.status == "ok", result.reason
    assert result.unmapped == [] and result.notes == []
    assert all(x.sqnr_db is not None for x in result.layers)
    weighted = [x for x in result.layers if x.kind != "block"]
    assert len(weighted) == 21 and all(x.own_sqnr_db is not None for x in weighted)
    assert "Keras layer" in (result.own_method or "")
    assert result.ranked_by == "weight_sqnr_db" and len(result.ranking) == 21
    # The stem's input is the quantized image either way: own and propagated agree.
    stem = result.layers[0]
    assert stem.own_sqnr_db == pytest.approx(stem.sqnr_db, abs=1.5)
    k0, w = result.what_if
    assert k0.k == 0 and w.k == 1 and w.status == "ok", w.reason
    assert w.size_bytes and w.latency_b1_p50_ms and w.agreement_with_fp32 is not None

    probe = TFLayerProbe(fw)
    probe.int8_layer_outputs(int8, fp32, data.test_images[:4])  # learns the tensor names
    mixed = probe.requantize_keeping_float("ptq", fp32, ["stages.0.0.conv1"], inputs)
    floats = _float_convs(mixed.tflite)
    assert len(floats) == 1 and "stages_0_0_conv1/" in next(iter(floats))
    # the float conv still reads the int8 activation, dequantized (as PT2E's now does)
    assert _float_conv_inputs(mixed.tflite) == [("DEQUANTIZE", np.int8)]
    images = data.test_images[:8]
    assert sqnr_db(fw.predict(fp32, images), fw.predict(mixed, images)) > 10


def test_qat_every_layer_mapped_and_keep_float_fine_tunes_again(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    qat = fw.convert_qat(fw.prepare_qat(fp32)).model
    probe = TFLayerProbe(fw)
    images = data.test_images[:8]
    out = probe.int8_layer_outputs(qat, fp32, images)
    assert len(out.outputs) == 21 + 8 and out.unmapped == []  # layers and block outputs
    # TFLite rounds every conv and dense output to int8 (conv2 before the ADD)
    assert out.output_quantized == {name: True for name in out.outputs}
    # Own error measured directly: every layer, the fp32 layer on the op's own input.
    weighted = sorted(x for x in out.outputs if not x.endswith(".out"))
    assert sorted(out.own) == weighted and "Keras" in (out.own_method or "")
    assert all(f.shape == q.shape for f, q in out.own.values())
    # The stem's input is the quantized image either way: own and propagated agree.
    ref = probe.fp32_layer_outputs(fp32, images)
    propagated = sqnr_db(ref["stem"], out.outputs["stem"])
    assert sqnr_db(*out.own["stem"]) == pytest.approx(propagated, abs=1.5)
    tuned: list[object] = []

    def fine_tune(model):
        tuned.append(model)
        return model, None

    mixed = probe.requantize_keeping_float(
        "qat", fp32, ["fc"], RequantizeInputs(calibration, fine_tune)
    )
    assert len(tuned) == 1
    assert not any(layer.name == "quant_fc" for layer in tuned[0].layers)
    assert any(layer.name == "quant_stem" for layer in tuned[0].layers)
    assert mixed.flow.endswith("+float")


def test_direct_own_error_equals_the_quantization_debuggers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The two TF own-error methods (QAT's direct one, PTQ's debugger) agree layer by layer
    on a PTQ model: the same quantity, measured two ways. The stem differs slightly: the
    debug model quantizes its float input itself."""
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    int8 = fw.quantize_ptq(fp32, calibration).model
    probe = TFLayerProbe(fw)
    images = data.test_images[:64]
    out = probe.int8_layer_outputs(int8, fp32, images)
    interp = probe._interpreter(int8, len(images))
    index, _, _ = probe._map(interp)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    direct, _, _ = probe._own_direct(interp, index, tensors, fp32, out.outputs)
    given = probe.debugger_own_error(fp32, images, calibration)
    assert len(given.figures) == 21 and "QuantizationDebugger" in given.method
    for name, pair in direct.items():
        tolerance = 1.5 if name == "stem" else 1e-3
        assert sqnr_db(*pair) == pytest.approx(given.figures[name][0], abs=tolerance), name


# ---------------------------------------------------------------- issue 17


def test_own_error_splits_into_weight_and_output_rounding(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Weight-only: the layer's op with TFLite's int8 weights (dequantized), float output,
    against the Keras fp32 weights on the op's own input; output-only: the int8 output
    against that float one. TFLite rounds every output, so both parts are there."""
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    int8 = fw.quantize_ptq(fp32, calibration).model
    out = TFLayerProbe(fw).int8_layer_outputs(int8, fp32, data.test_images[:16])
    names = [x.name for x in canonical_layers(fw.net)]
    assert sorted(out.weight) == sorted(names) and sorted(out.output) == sorted(names)
    for name in names:
        ref, with_int8_weights = out.weight[name]
        np.testing.assert_allclose(ref, out.own[name][0], rtol=1e-6, atol=1e-6)
        unrounded, q = out.output[name]
        np.testing.assert_array_equal(unrounded, with_int8_weights)
        np.testing.assert_array_equal(q, out.own[name][1])
        weight, output = sqnr_db(*out.weight[name]), sqnr_db(*out.output[name])
        own = sqnr_db(*out.own[name])
        assert weight is not None and output is not None and own is not None, name
        # the float op with int8 weights is the int8 op before its output rounding: at
        # most half a step apart wherever the int8 output is not clipped at its range
        levels = np.unique(q)
        step = np.diff(levels).min()
        inside = (q > levels[0]) & (q < levels[-1])
        assert np.abs(unrounded - q)[inside].max() <= 0.5 * step * 1.01 + 1e-5, name
        assert own < min(weight, output) + 0.5, name


def test_block_outputs_are_the_add_ops_int8_outputs(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from harness_contract.layers.error import measuring_points

    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    int8 = fw.quantize_ptq(fp32, calibration).model
    probe = TFLayerProbe(fw)
    images = data.test_images[:16]
    out = probe.int8_layer_outputs(int8, fp32, images)
    ref = probe.fp32_layer_outputs(fp32, images)
    blocks = [p.name for p in measuring_points(fw.net) if p.kind == "block"]
    assert len(blocks) == 8
    for name in blocks:
        assert out.output_quantized[name] is True, name
        assert "_relu2/" in out.tool_names[name] or "_add/" in out.tool_names[name]
        assert ref[name].shape == out.outputs[name].shape
        assert sqnr_db(ref[name], out.outputs[name]) > 10, name
        assert name not in out.own
    assert out.unmapped == []


def test_qat_float_model_holds_the_fine_tuned_weights(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    qat = fw.prepare_qat(fp32)
    # stand-in for fine-tuning: move one kernel (the wrapper holds it)
    (kernel,) = [v for v in qat.weights if v.name == "stages_0_0_conv2/kernel:0"]
    kernel.assign_add(np.full(kernel.shape, 0.5, np.float32))
    tuned = TFLayerProbe(fw).qat_float_model(qat, fp32)
    assert tuned is not None and not any(x.name.startswith("quant_") for x in tuned.layers)
    moved = tuned.get_layer("stages_0_0_conv2").get_weights()[0]
    before = fp32.get_layer("stages_0_0_conv2").get_weights()[0]
    np.testing.assert_allclose(moved - before, 0.5, atol=1e-6)
    np.testing.assert_array_equal(
        tuned.get_layer("stem").get_weights()[0], fp32.get_layer("stem").get_weights()[0]
    )
