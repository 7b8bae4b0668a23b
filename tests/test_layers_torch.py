"""The PyTorch per-layer probe: every canonical layer mapped in PT2E (PTQ and QAT) and FX
models, its figures consistent with the model's own outputs, keep-float really leaves
the layer in float."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchao")

from harness_contract.layers.analysis import Analysis, RequantizeInputs  # noqa: E402
from harness_contract.layers.error import (  # noqa: E402
    canonical_layers,
    measuring_points,
    sqnr_db,
)
from harness_contract.spec.analysis import AnalysisSpec  # noqa: E402
from tests.layers_fixtures import small_data, small_spec, varied_weights  # noqa: E402
from torch_runner.layers import TorchLayerProbe, output_point  # noqa: E402
from torch_runner.runner import TorchFramework  # noqa: E402

# Each test builds, quantizes and probes a real model: the slow tier.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning"),
]


def _setup(tmp_path_factory: pytest.TempPathFactory, *overrides: str):
    spec = small_spec(*overrides)
    fw = TorchFramework()
    fw.setup(spec, threads=2)
    data = small_data(Path(tmp_path_factory.getbasetemp()) / "layers-data")
    fp32 = fw.build(varied_weights(spec))
    calibration = [data.train_images[:32]]
    return fw, spec, data, fp32, calibration


def test_output_points_are_the_modules_after_each_conv() -> None:
    from harness_contract.model.architecture import resnet18

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
    names = [x.name for x in measuring_points(fw.net)]  # the layers and the block outputs
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
    assert len(out.outputs) == 21 + 8 and out.unmapped == []  # layers and block outputs

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


def test_analysis_of_ptq_ranks_by_weight_rounding_and_measures_each_k(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    int8 = fw.quantize_ptq(fp32, calibration).model
    analysis = Analysis(
        fw, TorchLayerProbe(fw), spec, AnalysisSpec(images=32, keep_float=[2]), data, threads=2
    )
    result = analysis.analyse("ptq", int8, fp32, RequantizeInputs(calibration, lambda m: (m, None)))
    assert result.status == "ok", result.reason
    assert result.ranked_by == "weight_sqnr_db" and len(result.worst) == 5
    assert len(result.ranking) == 21 and result.ranking[:5] == result.worst
    assert all(x.sqnr_db is not None and x.mse is not None for x in result.layers)
    k0, w = result.what_if
    assert k0.k == 0 and k0.status == "ok" and k0.latency_b1_p50_ms
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


# ---------------------------------------------------------------- issue 17


def test_pt2e_own_error_splits_into_weight_and_output_rounding(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Weight-only: the layer's op with its int8-rounded weights, float output, against the
    fp32 weights on the same input; output-only: the int8 output against that float one.
    Where PT2E leaves the output unrounded (conv2, fc) output rounding is nil and the own
    error is the weight part exactly."""
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    int8 = fw.quantize_ptq(fp32, calibration).model
    out = TorchLayerProbe(fw).int8_layer_outputs(int8, fp32, data.test_images[:16])
    names = [x.name for x in canonical_layers(fw.net)]
    assert sorted(out.weight) == sorted(names) and sorted(out.output) == sorted(names)
    for name in names:
        ref, with_int8_weights = out.weight[name]
        np.testing.assert_array_equal(ref, out.own[name][0])  # the same fp32 reference
        unrounded, q = out.output[name]
        np.testing.assert_array_equal(unrounded, with_int8_weights)
        np.testing.assert_array_equal(q, out.own[name][1])
        if not out.output_quantized[name]:
            assert sqnr_db(unrounded, q) is None  # identical: nothing rounds the output
        else:
            # both parts are there: the own error is worse than either alone
            own = sqnr_db(*out.own[name])
            assert own is not None and own < sqnr_db(*out.output[name]) + 0.5
            assert own < sqnr_db(*out.weight[name]) + 0.5


def test_pt2e_block_outputs_are_read_after_the_add_and_relu_where_pt2e_rounds(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from harness_contract.layers.error import measuring_points

    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    int8 = fw.quantize_ptq(fp32, calibration).model
    probe = TorchLayerProbe(fw)
    images = data.test_images[:16]
    out = probe.int8_layer_outputs(int8, fp32, images)
    ref = probe.fp32_layer_outputs(fp32, images)
    blocks = [p.name for p in measuring_points(fw.net) if p.kind == "block"]
    assert len(blocks) == 8 and "stages.0.0.out" in blocks
    for name in blocks:
        assert out.output_quantized[name] is True, name
        assert ref[name].shape == out.outputs[name].shape
        assert (ref[name] >= 0).all()  # after the ReLU
        assert sqnr_db(ref[name], out.outputs[name]) > 10
    assert name not in out.own and name not in out.weight


def test_pt2e_keep_float_keeps_the_int8_input_like_tflite(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A layer kept in float still reads the int8 activation (a quantize/dequantize pair on
    its input), as a TFLite denylisted op does: float removes its weight rounding only."""
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    kept = ["stages.0.0.conv1", "stages.1.0.conv2", "fc"]
    inputs = RequantizeInputs(calibration, lambda m: (m, None))
    mixed = TorchLayerProbe(fw).requantize_keeping_float("ptq", fp32, kept, inputs)
    weighted = {
        list(n.meta["nn_module_stack"].values())[-1][0]: n
        for n in mixed.serializable.graph.nodes
        if n.target in (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default)
    }
    for name in kept:
        node = weighted[name]
        assert node.args[1].op == "get_attr", name  # fp32 weight: no dequantize
        x = node.args[0]
        assert str(x.target).startswith("quantized_decomposed.dequantize_per_tensor"), name
        assert str(x.args[0].target).startswith("quantized_decomposed.quantize_per_tensor")
    images = data.test_images[:16]
    assert sqnr_db(fw.predict(fp32, images), fw.predict(mixed, images)) > 15


def test_qat_float_model_holds_the_fine_tuned_weights(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    fw, spec, data, fp32, calibration = _setup(tmp_path_factory)
    prepared = fw.prepare_qat(fp32)
    with torch.no_grad():  # stand-in for fine-tuning: move one weight
        for name, p in prepared.named_parameters():
            if name == "stages.0.0.conv1.weight":
                p.add_(0.5)
    tuned = TorchLayerProbe(fw).qat_float_model(prepared, fp32)
    assert tuned is not None and isinstance(tuned, torch.nn.Module)
    delta = tuned.stages[0][0].conv1.weight - fp32.stages[0][0].conv1.weight
    assert torch.allclose(delta, torch.full_like(delta, 0.5))
    assert torch.equal(tuned.stem.weight, fp32.stem.weight)
