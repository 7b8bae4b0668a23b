"""PyTorch's support probes (torch_runner.probes) run through the real support driver in a
child process: every question of the paper's Table IV answered at the installed versions,
with what was seen, in seconds."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchao")

import torch  # noqa: E402

from harness_contract.layout import FrameworkDir  # noqa: E402
from harness_contract.metrics import SupportMatrix  # noqa: E402
from harness_contract.spec.frameworks import SupportSpec  # noqa: E402
from harness_contract.study.support import PROBES, probe_support  # noqa: E402
from torch_runner import probes  # noqa: E402
from torch_runner.runner import TorchFramework  # noqa: E402

MODULE = "torch_runner.probes"
# The whole set takes ~9 s of CPU (half of it importing torch and torchao); the bound is
# for a machine shared with other work.
BOUND_S = 120.0


@pytest.fixture(scope="module")
def support(tmp_path_factory: pytest.TempPathFactory) -> tuple[SupportMatrix, float]:
    out = FrameworkDir(tmp_path_factory.mktemp("pytorch"))
    started = time.monotonic()
    matrix = probe_support(TorchFramework(), SupportSpec(timeout_s=BOUND_S), out)
    assert matrix is not None
    return matrix, time.monotonic() - started


def _answers(support: tuple[SupportMatrix, float]) -> dict[str, tuple[str, str | None]]:
    return {p.probe: (p.outcome, p.detail) for p in support[0].probes}


def test_the_module_has_a_probe_for_every_question():
    assert set(probes.PROBES) == {p.slug for p in PROBES}


def test_the_runner_names_its_probes_module():
    assert TorchFramework.probes_module == MODULE


def test_every_probe_answers_with_an_allowed_outcome_and_what_it_saw(support):
    matrix, seconds = support
    print(f"\nPyTorch probe set: {seconds:.1f} s wall in the child process")  # -s shows it
    assert [p.probe for p in matrix.probes] == [p.slug for p in PROBES]
    for p in matrix.probes:
        assert p.outcome in {"yes", "no", "not probed"}, (p.probe, p.outcome, p.detail)
        assert p.detail, f"{p.probe} answered {p.outcome} without saying what it saw"
        assert p.seconds is not None and p.seconds < BOUND_S
    assert matrix.versions["torch"] == torch.__version__
    assert "torchao" in matrix.versions


def test_int8_on_the_cpu_runs_on_onednn_kernels_pytorch_runs_itself(support):
    got = _answers(support)
    assert got["int8_cpu"][0] == "yes" and "onednn.qconv_pointwise" in got["int8_cpu"][1]
    outcome, detail = got["int8_native"]
    assert outcome == "yes" and "torch.fx.GraphModule" in detail
    assert "no separate interpreter" in detail


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU to probe")
def test_without_a_gpu_int8_on_a_gpu_is_not_probed_and_says_why(support):
    outcome, detail = _answers(support)["int8_gpu"]
    assert outcome == "not probed"
    assert "no CUDA device here" in detail and torch.__version__ in detail


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_int8_on_the_gpu_is_answered_with_what_happened_there():
    outcome, detail = probes.int8_gpu()
    assert outcome in {"yes", "no"}
    assert torch.cuda.get_device_name(0) in detail
    if outcome == "no":  # the int8 kernels' own error, and what the q/dq graph did
        assert "q/dq reference graph" in detail


def test_the_profiler_sees_layers_in_training_and_int8_ops_in_inference(support):
    got = _answers(support)
    assert got["profiler_training"][0] == "yes"
    assert "Conv2d_0" in got["profiler_training"][1] and "Backward" in got["profiler_training"][1]
    assert got["profiler_int8"][0] == "yes"
    assert "onednn::qconv_pointwise" in got["profiler_int8"][1]


def test_pt2e_fuses_conv_relu_and_places_quantization_itself(support):
    # The paper (2023): "manual layer fusion expected", "manual quantization agent setup".
    got = _answers(support)
    assert got["auto_fusion"][0] == "yes" and "post-op 'relu'" in got["auto_fusion"][1]
    assert got["auto_setup"][0] == "yes" and "no QuantStub" in got["auto_setup"][1]


def test_qat_converts_with_and_without_a_custom_layer(support):
    got = _answers(support)
    assert got["qat_convert"][0] == "yes" and "onednn.qconv_pointwise" in got["qat_convert"][1]
    assert got["custom_layer"][0] == "yes" and "custom layer stays fp32" in got["custom_layer"][1]


def test_embedding_names_what_each_route_did(support):
    outcome, detail = _answers(support)["embedding"]
    assert outcome == "yes"  # torchao and the FX flow quantize it; PT2E's x86 quantizer not
    assert "PT2E X86InductorQuantizer: the embedding reads its fp32 weight" in detail
    assert "IntxUnpackedToInt8Tensor holding torch.int8" in detail
    assert "torch.quint8 weights" in detail


def test_layers_of_the_int8_model_are_readable_and_it_exports_to_a_pt2(support):
    got = _answers(support)
    assert got["per_layer_access"][0] == "yes" and "torch.uint8" in got["per_layer_access"][1]
    outcome, detail = got["int8_export"]
    assert outcome == "yes" and ".pt2" in detail and "identical outputs" in detail
    assert "the oneDNN-lowered model does not save" in detail  # packed weights are opaque


def test_the_probe_set_runs_in_seconds(support):
    matrix, seconds = support
    slowest = max(matrix.probes, key=lambda p: p.seconds or 0)
    # ~9 s of CPU on an idle 2-core machine; generous for one shared with other work.
    assert seconds < 90, f"{seconds:.0f} s; slowest {slowest.probe} {slowest.seconds} s"


def test_the_x86_quantizer_leaves_attention_softmax_and_layer_norm_float(support):
    # What the issue found by hand: PT2E with X86InductorQuantizer quantizes every Linear
    # but leaves the attention matmuls (and softmax, LayerNorm) in float.
    got = _answers(support)
    for slug, op in (
        ("int8_attention_matmul", "aten.matmul"),
        ("int8_softmax", "aten.softmax"),
        ("int8_layer_norm", "aten.layer_norm"),
    ):
        assert got[slug][0] == "no" and op in got[slug][1] and "in float" in got[slug][1]
    outcome, detail = got["profiler_attention"]
    assert outcome == "yes" and "aten::matmul, aten::softmax, aten::layer_norm" in detail
    outcome, detail = got["qat_transformer"]
    assert outcome == "yes" and "3 of 3 linear layers int8" in detail
    assert "layer_norm, matmul, softmax" in detail
