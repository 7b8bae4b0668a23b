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

from harness_contract.analysis import Analysis, RequantizeInputs  # noqa: E402
from harness_contract.layer_error import canonical_layers, sqnr_db  # noqa: E402
from harness_contract.spec_analysis import AnalysisSpec  # noqa: E402
from tests.layers_fixtures import small_data, small_spec, varied_weights  # noqa: E402
from tf_runner.layers import TFLayerProbe, output_point  # noqa: E402
from tf_runner.quantize import interpreter_class  # noqa: E402
from tf_runner.runner import TFFramework  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


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


def test_point_layers_are_the_keras_layers_after_each_conv() -> None:
    net_layers = {x.name: x for x in canonical_layers(_net())}
    assert output_point(net_layers["stem"]) == "stem_relu"
    assert output_point(net_layers["stages.1.0.conv1"]) == "stages_1_0_relu1"
    assert output_point(net_layers["stages.1.0.shortcut"]) == "stages_1_0_shortcut"
    assert output_point(net_layers["fc"]) == "fc"


def _net():
    from harness_contract.architecture import resnet18

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
    assert all(x.sqnr_db is not None and x.own_sqnr_db is not None for x in result.layers)
    assert "Keras layer" in (result.own_method or "")
    assert result.ranked_by == "own_sqnr_db"
    # The stem's input is the quantized image either way: own and propagated agree.
    stem = result.layers[0]
    assert stem.own_sqnr_db == pytest.approx(stem.sqnr_db, abs=1.5)
    (w,) = result.what_if
    assert w.status == "ok", w.reason
    assert w.size_bytes and w.latency_b1_p50_ms and w.agreement_with_fp32 is not None

    probe = TFLayerProbe(fw)
    probe.int8_layer_outputs(int8, fp32, data.test_images[:4])  # learns the tensor names
    mixed = probe.requantize_keeping_float("ptq", fp32, ["stages.0.0.conv1"], inputs)
    floats = _float_convs(mixed.tflite)
    assert len(floats) == 1 and "stages_0_0_conv1/" in next(iter(floats))
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
    assert len(out.outputs) == 21 and out.unmapped == []
    # TFLite rounds every conv and dense output to int8 (conv2 before the ADD)
    assert out.output_quantized == {name: True for name in out.outputs}
    # Own error measured directly: every layer, the fp32 layer on the op's own input.
    assert sorted(out.own) == sorted(out.outputs) and "Keras" in (out.own_method or "")
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
    direct = probe._own_direct(interp, index, tensors, fp32, out.outputs)
    given = probe.debugger_own_error(fp32, images, calibration)
    assert len(given.figures) == 21 and "QuantizationDebugger" in given.method
    for name, pair in direct.items():
        tolerance = 1.5 if name == "stem" else 1e-3
        assert sqnr_db(*pair) == pytest.approx(given.figures[name][0], abs=tolerance), name
