"""One set of rules files every profiler op into the categories the report compares."""

from __future__ import annotations

import pytest

from harness_contract.study.breakdown import CATEGORIES, OpSample, categorize, summarize


@pytest.mark.parametrize(
    ("name", "category"),
    [
        # PyTorch eager, oneDNN int8 (PT2E lowering) and the FX flow's quantized ops
        ("aten::mkldnn_convolution", "convolution"),
        ("aten::convolution_backward", "convolution"),
        ("onednn::qconv2d_pointwise", "convolution"),
        ("quantized::conv2d_relu", "convolution"),
        ("aten::addmm", "matmul"),
        ("aten::mm", "matmul"),
        ("onednn::qlinear_pointwise", "matmul"),
        ("aten::quantize_per_tensor", "quantize"),
        ("aten::dequantize", "quantize"),
        ("quantized_decomposed::quantize_per_tensor", "quantize"),
        ("aten::fake_quantize_per_tensor_affine", "quantize"),
        ("aten::native_batch_norm", "normalization"),
        ("aten::max_pool2d_with_indices", "pooling"),
        ("aten::adaptive_avg_pool2d", "pooling"),
        ("aten::relu_", "elementwise"),
        ("aten::add_", "elementwise"),
        ("quantized::add", "elementwise"),
        ("aten::_foreach_add_", "elementwise"),
        ("aten::copy_", "memory"),
        ("aten::_to_copy", "memory"),
        ("aten::convert_element_type", "other"),
        ("harness::input", "data"),
        ("ProfilerStep#4", "overhead"),
        ("ProfilerStep*", "overhead"),
        ("cudaLaunchKernel", "overhead"),
        ("cudaStreamSynchronize", "overhead"),
        ("aten::_local_scalar_dense", "other"),
        ("aten::_fused_moving_avg_obs_fq_helper", "quantize"),
        ("FusedMovingAvgObsFqHelperBackward0", "quantize"),
        ("aten::select", "memory"),
        ("aten::t", "memory"),
        ("aten::ones_like", "memory"),
        ("aten::zero_", "memory"),
        ("aten::detach", "memory"),
        ("aten::round", "elementwise"),
        ("Memcpy HtoD (Pageable -> Device)", "memory"),
        # TensorFlow op types (oneDNN-fused on CPU) and TFLite builtins
        ("_MklNativeFusedConv2D", "convolution"),
        ("Conv2DBackpropFilter", "convolution"),
        ("_FusedMatMul", "matmul"),
        ("QuantizeV2", "quantize"),
        ("FakeQuantWithMinMaxVarsGradient", "quantize"),
        ("FusedBatchNormV3", "normalization"),
        ("_MklNativeMaxPoolGrad", "pooling"),
        ("ResourceApplyKerasMomentum", "elementwise"),
        ("AddV2", "elementwise"),
        ("IteratorGetNext", "data"),
        ("BroadcastTo", "memory"),
        ("AssignVariableOp", "memory"),
        ("L2Loss", "elementwise"),
        ("CONV_2D", "convolution"),
        ("FULLY_CONNECTED", "matmul"),
        ("QUANTIZE", "quantize"),
        ("DEQUANTIZE", "quantize"),
        ("RESHAPE", "memory"),
        ("IDLE", "idle"),
        ("SomethingNobodyKnows", "other"),
    ],
)
def test_ops_are_filed_by_what_they_compute(name: str, category: str) -> None:
    assert categorize(name) == category


def test_shares_are_per_device_and_idle_and_markers_are_left_out() -> None:
    rows, tops, totals = summarize(
        [
            OpSample("aten::mkldnn_convolution", "cpu", 700.0, 20),
            OpSample("aten::quantize_per_tensor", "cpu", 200.0, 1),
            OpSample("aten::relu_", "cpu", 100.0, 17),
            OpSample("IDLE", "cpu", 5000.0),
            OpSample("harness::input", "cpu", 9000.0),
            OpSample("aten::cudnn_convolution", "gpu", 30.0, 20),
            OpSample("aten::add_", "gpu", 10.0, 8),
            OpSample("stream: next batch", "cpu", 0.0, 3, "data"),
        ]
    )
    assert totals == {"cpu": 1000.0, "gpu": 40.0}
    shares = {(r.category, r.device): r.share for r in rows}
    assert shares == {
        ("convolution", "cpu"): 0.7,
        ("quantize", "cpu"): 0.2,
        ("elementwise", "cpu"): 0.1,
        ("convolution", "gpu"): 0.75,
        ("elementwise", "gpu"): 0.25,
    }
    # Listed per device in the report's category order.
    assert [(r.device, r.category) for r in rows] == [
        ("cpu", "convolution"),
        ("cpu", "quantize"),
        ("cpu", "elementwise"),
        ("gpu", "convolution"),
        ("gpu", "elementwise"),
    ]
    assert tops[0].name == "aten::mkldnn_convolution" and tops[0].calls == 20
    assert tops[0].share == 0.7


def test_the_same_op_seen_twice_is_summed_and_a_forced_category_is_kept() -> None:
    rows, tops, _ = summarize(
        [
            OpSample("aten::add_", "cpu", 30.0, 2),
            OpSample("aten::add_", "cpu", 10.0, 1),
            OpSample("harness stream: next batch", "cpu", 60.0, 3, "data"),
        ]
    )
    assert [(t.name, t.time_us, t.calls, t.category) for t in tops] == [
        ("harness stream: next batch", 60.0, 3, "data"),
        ("aten::add_", 40.0, 3, "elementwise"),
    ]
    assert {r.category for r in rows} <= set(CATEGORIES)
