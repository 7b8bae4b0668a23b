"""The PyTorch runner takes the ViT (model.arch = "vit") through every phase: the op census
of its PT2E and ExecuTorch int8 models, every measuring point of the per-layer analysis
(PT2E and FX, PTQ and QAT), keep-float and the sensitivity ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchao")

from harness_contract.layers.analysis import Analysis, RequantizeInputs  # noqa: E402
from harness_contract.layers.error import (  # noqa: E402
    CanonicalLayer,
    canonical_layers,
    measuring_points,
)
from harness_contract.model.vit import ViTDef  # noqa: E402
from harness_contract.spec.analysis import AnalysisSpec  # noqa: E402
from tests.layers_fixtures import small_data, small_spec  # noqa: E402
from torch_runner.census import FX_SOURCE, PT2E_SOURCE, PTE_SOURCE  # noqa: E402
from torch_runner.layers import TorchLayerProbe, output_point  # noqa: E402
from torch_runner.runner import TorchFramework  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

TINY = ("model.arch=vit", "model.vit.dim=16", "model.vit.depth=1", "model.vit.heads=2")


def _setup(tmp_path_factory: pytest.TempPathFactory, *overrides: str):
    spec = small_spec(*TINY, *overrides)
    fw = TorchFramework()
    fw.setup(spec, threads=1)
    data = small_data(Path(tmp_path_factory.getbasetemp()) / "layers-data")
    fp32 = fw.build(None).eval()  # PyTorch's own init: no shared weights needed here
    return fw, data, fp32, [data.train_images[:16]]


def _counts(census) -> dict[str, tuple[int, int]]:
    return {c.family: (c.int8_ops, c.float_ops) for c in census.counts}


def test_vit_output_points_are_the_modules_themselves() -> None:
    net = ViTDef(patch=4, dim=16, depth=2, heads=2, mlp_dim=32)
    points = {p.name: p for p in measuring_points(net)}
    assert output_point(points["blocks.1.attn.qkv"]) == "blocks.1.attn.qkv"
    assert output_point(points["blocks.0.out"]) == "blocks.0"  # after its second add
    assert output_point(points["patch_embed"]) == "patch_embed"


def test_pt2e_vit_census_leaves_attention_in_float(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    fw, data, fp32, calibration = _setup(tmp_path_factory)
    int8 = fw.quantize_ptq(fp32, calibration).model
    census = fw.op_census(int8)
    assert census is not None and census.source == PT2E_SOURCE
    counts = _counts(census)
    # Every conv and Linear is annotated by X86InductorQuantizer: int8.
    assert counts["conv"] == (1, 0)
    assert counts["linear"] == (len(fw.net.linears()), 0)
    # X86InductorQuantizer's default config has no annotator for matmul: both attention
    # matmuls (q @ k^T, attn @ v) read q, k, v straight from qkv's float output and stay
    # float, and so do softmax, the LayerNorms, GELU (only its output is rounded, for fc2),
    # the residual adds and the token mean (rounded after, for the head).
    assert counts["matmul"] == (0, 2 * fw.net.depth)
    assert counts["softmax"] == (0, fw.net.depth)
    assert counts["layer_norm"] == (0, len(fw.net.norms()))
    assert counts["gelu"] == (0, fw.net.depth)
    assert counts["add"] == (0, 1 + 2 * fw.net.depth)  # position embedding, residuals
    assert counts["mean"] == (0, 1)
    assert census.other == ["mul"]  # the attention scale
    # fp32: the exported graph, every op float.
    fp32_census = fw.op_census(fp32)
    assert fp32_census is not None
    assert all(c.int8_ops == 0 for c in fp32_census.counts)
    assert _counts(fp32_census)["linear"] == (0, len(fw.net.linears()))


def test_fp32_hooks_are_removed_when_a_point_is_missing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A hook left on the fp32 model fires in every later forward: QAT's export then
    failed on ``.numpy()`` of a traced tensor, after a failed analysis of PTQ."""
    fw, data, fp32, _ = _setup(tmp_path_factory)
    probe = TorchLayerProbe(fw)
    probe.layers = [*probe.layers, CanonicalLayer("blocks.9.out", "block", "raw")]
    with pytest.raises(AttributeError):
        probe.fp32_layer_outputs(fp32, data.test_images[:2])
    assert not any(m._forward_hooks for m in fp32.modules())


@pytest.mark.slow
@pytest.mark.parametrize("flow", ["pt2e", "fx"])
def test_every_vit_measuring_point_is_mapped(
    flow: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    fw, data, fp32, calibration = _setup(tmp_path_factory, f"pytorch.quant_flow={flow}")
    int8 = fw.quantize_ptq(fp32, calibration).model
    probe = TorchLayerProbe(fw)
    images = data.test_images[:8]
    out = probe.int8_layer_outputs(int8, fp32, images)
    ref = probe.fp32_layer_outputs(fp32, images)
    names = [x.name for x in measuring_points(fw.net)]
    assert sorted(out.outputs) == sorted(names) and out.unmapped == []
    assert sorted(ref) == sorted(names)
    assert all(ref[n].shape == out.outputs[n].shape for n in names)
    assert ref["blocks.0.out"].shape == (8, fw.net.tokens, fw.net.dim)
    np.testing.assert_allclose(ref["head"], fw.predict(fp32, images), rtol=1e-5, atol=1e-5)
    if flow == "pt2e":
        # the weight/output split for every weighted layer; PT2E rounds none of the ViT's
        # measured outputs itself (each feeds a float op: reshape to attention, GELU, add)
        weighted = [x.name for x in canonical_layers(fw.net)]
        assert sorted(out.weight) == sorted(weighted) == sorted(out.output)
        assert not any(out.output_quantized.values())
        return
    # FX rounds every module's output, and the residual adds are quantized.add
    assert all(out.output_quantized.values())
    # Its x86 config quantizes the matmuls and LayerNorm (PT2E's does not); softmax and
    # GELU read dequantized tensors and run in float.
    census = fw.op_census(int8)
    assert census is not None and census.source == FX_SOURCE
    counts = _counts(census)
    assert counts["linear"] == (len(fw.net.linears()), 0)
    assert counts["matmul"] == (2 * fw.net.depth, 0)
    assert counts["layer_norm"] == (len(fw.net.norms()), 0)
    assert counts["softmax"] == counts["gelu"] == (0, fw.net.depth)


@pytest.mark.slow
def test_pt2e_vit_qat_converts_and_is_mapped(tmp_path_factory: pytest.TempPathFactory) -> None:
    fw, data, fp32, _ = _setup(tmp_path_factory)
    prepared = fw.prepare_qat(fp32)
    prepared.train()
    with torch.no_grad():  # one pass in train mode so the fake-quant observers see data
        prepared(fw.normalize(data.train_images[:16]))
    qat = fw.convert_qat(prepared)
    assert "onednn.qlinear_pointwise.default" in qat.conversion.quantized_ops
    probe = TorchLayerProbe(fw)
    out = probe.int8_layer_outputs(qat.model, fp32, data.test_images[:8])
    assert sorted(out.outputs) == sorted(x.name for x in measuring_points(fw.net))
    assert probe.qat_float_model(prepared, fp32) is not None
    assert _counts(fw.op_census(qat.model))["linear"] == (len(fw.net.linears()), 0)


@pytest.mark.slow
def test_vit_sensitivity_ranking_and_keep_float(tmp_path_factory: pytest.TempPathFactory) -> None:
    fw, data, fp32, calibration = _setup(tmp_path_factory)
    int8 = fw.quantize_ptq(fp32, calibration).model
    spec = AnalysisSpec(images=16, keep_float=[1], ranking="sensitivity")
    analysis = Analysis(fw, TorchLayerProbe(fw), fw.spec, spec, data, threads=1)
    result = analysis.analyse("ptq", int8, fp32, RequantizeInputs(calibration, lambda m: (m, None)))
    assert result.status == "ok", result.reason
    assert result.ranked_by == "sensitivity_sqnr_db"
    assert sorted(result.ranking) == sorted(x.name for x in canonical_layers(fw.net))
    k0, k1 = result.what_if
    assert k0.status == "ok" and k1.status == "ok", k1.reason
    assert k1.float_layers == result.ranking[:1]
    # the layer kept in float reads its weights in fp32: no dequantize feeds its weight
    mixed = TorchLayerProbe(fw).requantize_keeping_float(
        "ptq", fp32, ["blocks.0.mlp.fc1"], RequantizeInputs(calibration, lambda m: (m, None))
    )
    weights = {
        list(n.meta["nn_module_stack"].values())[-1][0]: n.args[1]
        for n in mixed.serializable.graph.nodes
        if n.target == torch.ops.aten.linear.default
    }
    assert weights["blocks.0.mlp.fc1"].op == "get_attr"
    assert weights["blocks.0.mlp.fc2"].op == "call_function"  # still dequantized int8
    assert _counts(fw.op_census(mixed))["linear"] == (len(fw.net.linears()) - 1, 1)


@pytest.mark.slow
def test_vit_pte_census_counts_the_delegates_and_what_is_left_outside(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    pytest.importorskip("executorch")
    from torch_runner import executorch

    fw, data, fp32, calibration = _setup(tmp_path_factory)
    batches = [fw.normalize(b, torch.device("cpu")) for b in calibration]
    lowered = executorch.lower_ptq(fp32, batches, max_batch=4)
    census = lowered.ops
    assert census is not None and census.source == PTE_SOURCE
    counts = _counts(census)
    assert counts["conv"] == (1, 0)
    assert counts["linear"] == (len(fw.net.linears()), 0)
    # XNNPACKQuantizer annotates softmax, GELU, the adds and the scale's mul (unlike
    # X86InductorQuantizer) but not the attention matmuls: their bmm run fp32 inside
    # the delegates. XNNPACK takes no LayerNorm nor the token mean: they run outside the
    # delegates, in float.
    assert counts["matmul"] == (0, 2 * fw.net.depth)
    assert counts["softmax"] == counts["gelu"] == (fw.net.depth, 0)
    assert counts["add"] == (1 + 2 * fw.net.depth, 0)
    assert counts["layer_norm"] == (0, len(fw.net.norms()))
    assert counts["mean"] == (0, 1)
    images = data.test_images[:4]
    assert lowered.model(fw.normalize(images, torch.device("cpu"))).shape == (4, 10)


@pytest.mark.slow
def test_pt2e_resnet_census_counts_what_the_quantizer_annotated(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The same census on the ResNet: every conv and the fc int8, and the pool (the
    quantizer annotates it); the ReLUs after a conv and the residual adds read the conv's
    float output (oneDNN fuses them into the int8 conv as epilogues): float."""
    spec = small_spec()
    fw = TorchFramework()
    fw.setup(spec, threads=1)
    data = small_data(Path(tmp_path_factory.getbasetemp()) / "layers-data")
    int8 = fw.quantize_ptq(fw.build(None).eval(), [data.train_images[:16]]).model
    counts = _counts(fw.op_census(int8))
    assert counts["conv"] == (len(fw.net.convs()), 0)
    assert counts["linear"] == (1, 0) and counts["mean"] == (1, 0)
    assert counts["add"] == (0, len(fw.net.blocks))
    assert counts["relu"][0] == 0
