"""The TensorFlow runner takes the ViT (model.arch = "vit") through every phase: tfmot's
refusal of the whole model recorded as Unsupported, the dense_only QAT flow, the op census
of a real int8 .tflite, and every ViT measuring point mapped by the per-layer analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tf_runner  # noqa: F401 - sets TF_USE_LEGACY_KERAS before TensorFlow is first imported

pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
pytest.importorskip("tensorflow_model_optimization", reason="tfmot is not installed")

from harness_contract.layers.analysis import Analysis, RequantizeInputs  # noqa: E402
from harness_contract.layers.error import measuring_points  # noqa: E402
from harness_contract.metrics.census import OpCensus  # noqa: E402
from harness_contract.model.vit import ViTDef  # noqa: E402
from harness_contract.model.weights import initial_weights  # noqa: E402
from harness_contract.spec import build_spec  # noqa: E402
from harness_contract.spec.analysis import AnalysisSpec  # noqa: E402
from harness_contract.study.framework import RungInputs, Unsupported  # noqa: E402
from tests.layers_fixtures import small_data  # noqa: E402
from tf_runner.census import keras_census  # noqa: E402
from tf_runner.layers import TFLayerProbe  # noqa: E402
from tf_runner.qat_annotate import OutputOnly  # noqa: E402
from tf_runner.quantize import QAT_DENSE_ONLY_FLOW  # noqa: E402
from tf_runner.runner import TFFramework  # noqa: E402

# Each test builds a real tiny model; those that convert it more than once (or fine-tune
# and convert) take over ~10 s on 2 cores: the slow tier.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

DEPTH = 1
TINY_VIT = [
    "device=cpu",
    "model.arch=vit",
    "model.vit.patch=8",  # 16 tokens
    "model.vit.dim=16",
    "model.vit.heads=2",
    f"model.vit.depth={DEPTH}",
]


def _framework(*overrides: str) -> TFFramework:
    fw = TFFramework()
    fw.setup(build_spec("smoke", overrides=[*TINY_VIT, *overrides]), threads=1)
    return fw


def _fp32(fw: TFFramework) -> Any:
    weights = initial_weights(fw.spec.model, fw.spec.seed)
    if isinstance(fw.net, ViTDef):
        # Non-zero dense biases, as after training (the converter drops zero ones, and a
        # bias it cannot fuse would show as an ADD of its own)
        rng = np.random.default_rng(0)
        for name, _, fan_out in fw.net.linears():
            weights[f"{name}.bias"] = rng.normal(0, 0.1, fan_out).astype(np.float32)
    return fw.build(weights)


@pytest.fixture(scope="module")
def ptq(tmp_path_factory: pytest.TempPathFactory) -> tuple[TFFramework, Any, Any, Any]:
    """The tiny ViT, its PTQ int8 model and the synthetic data, made once."""
    fw = _framework()
    data = small_data(Path(tmp_path_factory.getbasetemp()) / "vit-data")
    fp32 = _fp32(fw)
    int8 = fw.quantize_ptq(fp32, [data.train_images[:16]]).model
    return fw, fp32, int8, data


def _counts(census: OpCensus) -> dict[str, tuple[int, int]]:
    return {c.family: (c.int8_ops, c.float_ops) for c in census.counts}


def test_whole_model_qat_is_unsupported_with_tfmots_own_message() -> None:
    fw = _framework()
    with pytest.raises(Unsupported) as info:
        fw.prepare_qat(_fp32(fw))
    error = info.value.error
    # tfmot 0.8's quantize_apply rebuilds the annotated graph and breaks on the attention's
    # slicing: "... calling layer "blocks_0_attn_merge" (type Permute). Dimension must be 8
    # but is 4 ...", before it would name the LayerNormalization it does not support. Its
    # message is kept, on one line, without Keras' call-argument dump, and the layer
    # classes its registry lacks are named after it.
    assert error.startswith("tfmot quantize_model cannot quantize the model: ")
    assert "blocks_0_attn_merge" in error
    assert f"LayerNormalization x{2 * DEPTH + 1}" in error and "PositionEmbedding" in error
    assert "\n" not in error and "Call arguments" not in error
    assert "tensorflow.qat_flow=dense_only" in info.value.workaround


@pytest.mark.slow
def test_dense_only_qat_converts_the_vit_to_int8() -> None:
    fw = _framework("tensorflow.qat_flow=dense_only")
    fp32 = _fp32(fw)
    prepared = fw.prepare_qat(fp32)
    wrapped = {x.name for x in prepared.layers if x.name.startswith("quant_")}
    assert {"quant_patch_embed", "quant_head", "quant_blocks_0_attn_qkv"} <= wrapped
    # A LayerNorm feeding a Dense trains in float, only its output fake-quantized (the
    # Dense's int8 input range: tfmot never quantizes a layer's input itself).
    norm1 = prepared.get_layer("quant_blocks_0_norm1")
    assert isinstance(norm1.quantize_config, OutputOnly)
    q = fw.convert_qat(prepared)
    assert q.conversion.flow == QAT_DENSE_ONLY_FLOW == q.model.flow
    assert any(n.startswith("FULLY_CONNECTED") for n in q.conversion.quantized_ops)
    counts = _counts(fw.op_census(q.model))
    # Observed: every Dense and the patch conv compute in int8 (their inputs quantized by
    # the producers' output-only quantizers); LayerNorm and softmax have no trained range
    # inside, so the converter keeps them float between DEQUANTIZE and QUANTIZE. Of the
    # attention's matmuls, q @ k^T stays float; softmax @ v runs int8 (both its inputs
    # carry ranges: the softmax's output and v, from qkv's output).
    assert counts["linear"] == (4 * DEPTH + 1, 0)
    assert counts["conv"] == (1, 0)
    assert counts["layer_norm"] == (0, 2 * DEPTH + 1)
    assert counts["softmax"] == (0, DEPTH)
    assert counts["matmul"] == (DEPTH, DEPTH)
    images = np.zeros((2, 32, 32, 3), np.uint8)
    assert fw.predict(q.model, images).shape == (2, 10)

    # The per-layer analysis maps every measuring point of the QAT .tflite, against the
    # fine-tuned float weights (here the fp32 ones: no fine-tuning ran).
    probe = TFLayerProbe(fw)
    reference = probe.qat_float_model(prepared, fp32)
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    out = probe.int8_layer_outputs(q.model, reference, images)
    assert sorted(out.outputs) == sorted(p.name for p in measuring_points(fw.net))
    assert out.unmapped == []
    ref = probe.fp32_layer_outputs(reference, images)
    assert all(ref[k].shape == v.shape for k, v in out.outputs.items())
    # the residual adds stay float in this flow: the block output is not rounded
    assert out.output_quantized["blocks.0.out"] is False
    assert out.output_quantized["blocks.0.attn.qkv"] is True

    tuned: list[Any] = []

    def fine_tune(model: Any) -> tuple[Any, None]:
        tuned.append(model)
        return model, None

    mixed = probe.requantize_keeping_float(
        "qat", fp32, ["blocks.0.mlp.fc1"], RequantizeInputs([], fine_tune)
    )
    names = {x.name for x in tuned[0].layers}
    assert "blocks_0_mlp_fc1" in names and "quant_blocks_0_mlp_fc2" in names
    assert _counts(fw.op_census(mixed))["linear"] == (4 * DEPTH, 1)  # fc1 runs in float
    assert mixed.flow == f"{QAT_DENSE_ONLY_FLOW}+float"


def test_ptq_census_of_the_int8_vit(ptq: tuple[TFFramework, Any, Any, Any]) -> None:
    fw, fp32, int8, _ = ptq
    census = fw.op_census(int8)
    assert census is not None and ".tflite" in census.source
    counts = _counts(census)
    # Observed (TFLITE_BUILTINS_INT8, calibrated): everything computes on int8, the
    # attention's BATCH_MATMULs and SOFTMAX and every decomposed LayerNorm included.
    assert counts["linear"] == (4 * DEPTH + 1, 0)  # qkv, proj, fc1, fc2 per block + head
    assert counts["conv"] == (1, 0)
    assert counts["matmul"] == (2 * DEPTH, 0)
    assert counts["softmax"] == (DEPTH, 0)
    assert counts["layer_norm"] == (2 * DEPTH + 1, 0)
    assert counts["gelu"] == (DEPTH, 0)
    assert counts["add"] == (1 + 2 * DEPTH, 0)  # position embedding, two residuals a block
    assert counts["mean"] == (1, 0)  # the token pooling
    assert census.other == ["MUL"]  # the attention's 1/sqrt(head_dim) scale
    fp32_counts = _counts(fw.op_census(fp32))
    assert fp32_counts["linear"] == (0, 4 * DEPTH + 1)
    assert fp32_counts["layer_norm"] == (0, 2 * DEPTH + 1)
    assert _counts(keras_census(fp32)) == fp32_counts
    # the LiteRT fp32 rung's census, read from its own .tflite: the same ops, all float
    rung = fw.lower(
        "litert", RungInputs("baseline", fp32, fp32, [], lambda m: (m, None), max_batch=1)
    )
    assert rung.ops is not None and _counts(rung.ops) == fp32_counts


@pytest.mark.slow
def test_every_vit_measuring_point_is_mapped(ptq: tuple[TFFramework, Any, Any, Any]) -> None:
    fw, fp32, int8, data = ptq
    spec = AnalysisSpec(images=16, keep_float=[1], ranking="sensitivity")
    probe = TFLayerProbe(fw)
    analysis = Analysis(fw, probe, fw.spec, spec, data, threads=1)
    inputs = RequantizeInputs([data.train_images[:16]], lambda m: (m, None))
    result = analysis.analyse("ptq", int8, fp32, inputs)
    assert result.status == "ok", result.reason
    assert result.unmapped == [] and result.notes == []
    points = [p.name for p in measuring_points(fw.net)]
    assert [x.layer for x in result.layers] == points
    assert all(x.sqnr_db is not None for x in result.layers)
    weighted = [x for x in result.layers if x.kind != "block"]
    assert len(weighted) == 4 * DEPTH + 2  # the patch conv, every dense layer
    for x in weighted:
        assert None not in (x.own_sqnr_db, x.weight_sqnr_db, x.output_sqnr_db), x.layer
        assert x.sensitivity_sqnr_db is not None, x.layer
    assert result.ranked_by == "sensitivity_sqnr_db" and len(result.ranking) == len(weighted)
    # a token-wise Dense is one FULLY_CONNECTED, its bias inside (the ViT flattens tokens)
    qkv = next(x for x in result.layers if x.layer == "blocks.0.attn.qkv")
    assert "blocks_0_attn_qkv/" in (qkv.tool_name or "")
    assert qkv.own_sqnr_db > 20 and qkv.weight_sqnr_db > 20, qkv
    block = next(x for x in result.layers if x.kind == "block")
    assert "blocks_0_add2" in (block.tool_name or "") and block.output_quantized is True
    k0, k1 = result.what_if
    assert k0.k == 0 and k1.k == 1 and k1.status == "ok", k1.reason
    # keep-float really leaves the layer's FULLY_CONNECTED in float (the debugger's denylist)
    mixed = probe.requantize_keeping_float("ptq", fp32, ["blocks.0.attn.qkv"], inputs)
    assert _counts(fw.op_census(mixed))["linear"] == (4 * DEPTH, 1)


@pytest.mark.slow
def test_dense_only_qat_on_the_resnet_converts_every_conv_to_int8() -> None:
    """tensorflow.qat_flow = "dense_only" is the ViT's workaround, but it also takes the
    ResNet: its BatchNorms fold into the int8 convs at conversion."""
    fw = TFFramework()
    fw.setup(
        build_spec(
            "smoke",
            overrides=[
                "device=cpu",
                "model.width_multiplier=0.125",
                "tensorflow.qat_flow=dense_only",
            ],
        ),
        threads=1,
    )
    q = fw.convert_qat(fw.prepare_qat(_fp32(fw)))
    assert q.conversion.flow == QAT_DENSE_ONLY_FLOW
    counts = _counts(fw.op_census(q.model))
    convs = len(fw.net.convs())
    assert counts["conv"] == (convs, 0) and counts["linear"] == (1, 0)
