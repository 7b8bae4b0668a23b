"""The PyTorch per-layer probe: every canonical layer mapped in PT2E (PTQ and QAT) and FX
models, its figures consistent with the model's own outputs, keep-float really leaves
the layer in float."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchao")

from harness_contract.analysis import Analysis, RequantizeInputs  # noqa: E402
from harness_contract.layer_error import canonical_layers, sqnr_db  # noqa: E402
from harness_contract.spec_analysis import AnalysisSpec  # noqa: E402
from tests.layers_fixtures import small_data, small_spec, varied_weights  # noqa: E402
from torch_runner.layers import TorchLayerProbe, output_point  # noqa: E402
from torch_runner.runner import TorchFramework  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


def _setup(tmp_path_factory: pytest.TempPathFactory, *overrides: str):
    spec = small_spec(*overrides)
    fw = TorchFramework()
    fw.setup(spec, threads=2)
    data = small_data(Path(tmp_path_factory.getbasetemp()) / "layers-data")
    fp32 = fw.build(varied_weights(spec))
    calibration = [data.train_images[:32]]
    return fw, spec, data, fp32, calibration


def test_output_points_are_the_modules_after_each_conv() -> None:
    from harness_contract.architecture import resnet18

    layers = {x.name: x for x in canonical_layers(resnet18(small_spec().model))}
    assert output_point(layers["stem"]) == "relu"
    assert output_point(layers["stages.1.0.conv1"]) == "stages.1.0.relu1"
    assert output_point(layers["stages.1.0.shortcut"]) == "stages.1.0.shortcut"
    assert output_point(layers["fc"]) == "fc"


@pytest.mark.parametrize("flow", ["pt2e", "fx"])
def test_every_canonical_layer_is_mapped_and_the_logits_match_predict(
    flow: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory, f"pytorch.quant_flow={flow}")
    int8 = fw.quantize_ptq(fp32, calibration).model
    probe = TorchLayerProbe(fw)
    images = data.test_images[:16]
    out = probe.int8_layer_outputs(int8, fp32, images)
    names = [x.name for x in canonical_layers(fw.net)]
    assert sorted(out.outputs) == sorted(names) and out.unmapped == []
    ref = probe.fp32_layer_outputs(fp32, images)
    assert all(ref[n].shape == out.outputs[n].shape for n in names)
    # fc's output is the logits: fp32's equal predict's, int8's the int8 model's (the
    # reference graph vs the lowered kernels, within int8 rounding).
    np.testing.assert_allclose(ref["fc"], fw.predict(fp32, images), rtol=1e-5, atol=1e-5)
    agreement = sqnr_db(fw.predict(int8, images), out.outputs["fc"])
    assert agreement is None or agreement > 25  # None: identical (FX runs the same modules)
    assert out.method and (out.own_method is not None) == (flow == "pt2e")
    # Which outputs the int8 model rounds itself: PT2E leaves conv2 (fused into the
    # residual add) and fc (the logits) in float, so their own error is weight rounding.
    assert sorted(out.output_quantized) == sorted(names)
    rounded = {n for n, q in out.output_quantized.items() if q}
    assert {"stem", "stages.0.0.conv1", "stages.1.0.shortcut"} <= rounded
    if flow == "pt2e":
        assert not {"stages.0.0.conv2", "fc"} & rounded


def test_qat_model_is_mapped_and_keep_float_leaves_the_conv_in_float(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    prepared = fw.prepare_qat(fp32)
    with torch.no_grad():  # one pass in train mode so the observers see data
        prepared(fw.normalize(data.train_images[:32]))
    qat = fw.convert_qat(prepared).model
    probe = TorchLayerProbe(fw)
    out = probe.int8_layer_outputs(qat, fp32, data.test_images[:8])
    assert len(out.outputs) == 21 and out.unmapped == []

    tuned: list[object] = []

    def fine_tune(model):
        tuned.append(model)
        return model, None

    mixed = probe.requantize_keeping_float(
        "qat", fp32, ["stages.0.0.conv1"], RequantizeInputs(calibration, fine_tune)
    )
    assert len(tuned) == 1  # the study's fine-tuning ran on the new prepared model
    weights = {
        n.meta["nn_module_stack"] and list(n.meta["nn_module_stack"].values())[-1][0]: n.args[1]
        for n in mixed.serializable.graph.nodes
        if n.target == torch.ops.aten.conv2d.default
    }
    assert weights["stages.0.0.conv1"].op == "get_attr"  # fp32 weight, no dequantize
    assert weights["stages.0.0.conv2"].op == "call_function"  # still int8


def test_analysis_of_ptq_ranks_by_own_error_and_measures_each_k(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    int8 = fw.quantize_ptq(fp32, calibration).model
    analysis = Analysis(
        fw, TorchLayerProbe(fw), spec, AnalysisSpec(images=32, keep_float=[2]), data, threads=2
    )
    result = analysis.analyse("ptq", int8, fp32, RequantizeInputs(calibration, lambda m: (m, None)))
    assert result.status == "ok", result.reason
    assert result.ranked_by == "own_sqnr_db" and len(result.worst) == 5
    assert all(x.sqnr_db is not None and x.mse is not None for x in result.layers)
    (w,) = result.what_if
    assert w.status == "ok" and w.float_layers == result.worst[:2]
    assert w.top1 is not None and w.size_bytes and w.latency_b1_p50_ms


def test_keep_float_lowers_every_other_layer_to_onednn_int8(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A float layer must not stop its neighbours' lowering: every other conv and the fc
    stay oneDNN int8 kernels (a what-if that fell back to q/dq reference ops would time a
    model nobody deploys). The float conv itself runs as an fp32 oneDNN conv."""
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    int8 = fw.quantize_ptq(fp32, calibration).model
    kept = ["stages.0.0.conv1", "stages.2.0.shortcut"]
    mixed = TorchLayerProbe(fw).requantize_keeping_float(
        "ptq", fp32, kept, RequantizeInputs(calibration, lambda m: (m, None))
    )

    def kernels(model) -> list[str]:
        return [
            str(n.target)
            for n in model.runnable.graph.nodes
            if str(n.target).startswith(("onednn.q", "mkldnn._convolution"))
        ]

    int8_kernels, mixed_kernels = kernels(int8), kernels(mixed)
    assert len(int8_kernels) == 21 and all(k.startswith("onednn.q") for k in int8_kernels)
    assert sum(k.startswith("onednn.q") for k in mixed_kernels) == 21 - len(kept)
    assert sum(k.startswith("mkldnn._convolution") for k in mixed_kernels) == len(kept)
