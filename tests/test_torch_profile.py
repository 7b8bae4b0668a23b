"""The PyTorch profiling hooks: scheduled torch.profiler passes, their traces and breakdowns,
the thread override, and the whole study recording its profiles."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchao")

from harness_contract.data.cifar import Cifar10, load_cifar10, write_synthetic  # noqa: E402
from harness_contract.model.architecture import resnet18  # noqa: E402
from harness_contract.model.weights import initial_weights  # noqa: E402
from harness_contract.spec import ProfileSpec, build_spec  # noqa: E402
from harness_contract.study.breakdown import OpSample, summarize  # noqa: E402
from harness_contract.study.framework import ProfileCapture, ProfilerUnavailable  # noqa: E402
from tests.e2e_run import E2E_OVERRIDES, E2ERun  # noqa: E402
from tests.test_torch_runner import THREADS, _framework  # noqa: E402
from torch_runner.profile import NO_GPU_EVENTS  # noqa: E402
from torch_runner.runner import TorchFramework  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*reduce_range will be deprecated:UserWarning",
    "ignore:.*quantized tensor creation functions:UserWarning",
    "ignore:.*LeafSpec.*:FutureWarning",
)

SCHEDULE = ProfileSpec()  # wait 1, warm-up 2, active 3: what a study runs
BATCH = 16
# The smoke network's convs (a ResNet10: stem, 8 in the blocks, 3 shortcuts).
CONVS_PER_FORWARD = len(resnet18(build_spec("smoke").model).convs())
# Measured at width 0.25 with the default schedule (torch 2.13 CPU): inference traces
# ~0.14-0.17 MB, fp32 training ~1.2 MB, QAT training ~8 MB (24 MB at full width: the
# fused observer's per-channel loop). The bounds leave about 2x room.
MAX_TRACE_BYTES = {"inference": 400_000, "train": 2_500_000, "qat-train": 16_000_000}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Cifar10:
    root = write_synthetic(
        tmp_path_factory.mktemp("profile-data"), train_per_batch=20, test_count=40, seed=5
    )
    return load_cifar10(root)


def _train_work(fw: TorchFramework, model: Any, data: Cifar10):
    """What the pipeline profiles for training: SGD steps, input under a harness region."""
    trainer = fw.trainer(model, fw.spec.train)
    rng = np.random.default_rng(0)

    def work(i: int) -> None:
        with fw.region("harness::input"):
            idx = rng.choice(len(data.train_labels), BATCH, replace=False)
            images, labels = data.train_images[idx], data.train_labels[idx]
        trainer.step(images, labels, lr=0.01)
        if i == SCHEDULE.steps - 1:
            trainer.end_epoch()

    return work


def _inference_work(fw: TorchFramework, model: Any, data: Cifar10):
    call, _ = fw.latency_call(model, data.test_images[:BATCH])
    return lambda i: call()


@dataclass(frozen=True)
class Pass:
    capture: ProfileCapture
    events: list[dict[str, Any]]

    def names(self) -> set[str]:
        return {e.get("name", "") for e in self.events}


@pytest.fixture(scope="module")
def passes(data: Cifar10, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pass]:
    """One scheduled pass each: fp32 and QAT training, fp32 and PT2E int8 inference."""
    fw, spec = _framework("smoke")
    fp32 = fw.build(initial_weights(spec.model, spec.seed))
    int8 = fw.quantize_ptq(fp32, [data.train_images[:32], data.train_images[32:64]]).model
    trace_dir = tmp_path_factory.mktemp("traces")
    works = {
        "fp32-train": lambda: (m := fw.build(None), _train_work(fw, m, data)),
        "qat-train": lambda: (m := fw.prepare_qat(fp32), _train_work(fw, m, data)),
        "fp32-inference": lambda: (fp32, _inference_work(fw, fp32, data)),
        "int8-inference": lambda: (int8, _inference_work(fw, int8, data)),
    }
    out = {}
    for name, prepare in works.items():
        model, work = prepare()
        capture = fw.profile(model, work, SCHEDULE, trace_dir, name)
        out[name] = Pass(capture, json.loads(capture.trace.read_text())["traceEvents"])
    return out


def _shares(samples: list[OpSample], device: str = "cpu") -> dict[str, float]:
    breakdown, _, _ = summarize(samples)
    return {row.category: row.share for row in breakdown if row.device == device}


# ---------------------------------------------------------------- traces


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "op"),
    [
        ("fp32-train", "aten::convolution_backward"),
        ("qat-train", "aten::fused_moving_avg_obs_fake_quant"),
        ("fp32-inference", "aten::mkldnn_convolution"),
        ("int8-inference", "onednn::qconv2d_pointwise"),
    ],
)
def test_each_pass_writes_a_perfetto_trace_holding_the_ops_it_ran(
    passes: dict[str, Pass], name: str, op: str
) -> None:
    p = passes[name]
    assert p.capture.trace.name == f"{name}.pt.trace.json"
    assert (p.capture.tool, p.capture.viewer, p.capture.device) == (
        "torch.profiler",
        "perfetto",
        "cpu",
    )
    assert p.capture.notes == []
    assert op in p.names()
    assert any(e.get("cat") == "cpu_op" and e.get("dur", 0) > 0 for e in p.events)
    assert op in {s.name for s in p.capture.ops if s.device == "cpu" and s.self_us > 0}
    assert not list(p.capture.trace.parent.glob("*.partial"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fp32-train", "int8-inference"])
def test_trace_keeps_only_the_active_steps_of_the_schedule(
    passes: dict[str, Pass], name: str
) -> None:
    steps = {n for n in passes[name].names() if n.startswith("ProfilerStep#")}
    first = SCHEDULE.wait + SCHEDULE.warmup
    assert steps == {f"ProfilerStep#{i}" for i in range(first, SCHEDULE.steps)}


@pytest.mark.slow
def test_op_counts_and_times_are_totals_over_the_active_steps(passes: dict[str, Pass]) -> None:
    ops = passes["fp32-inference"].capture.ops
    conv = next(s for s in ops if s.name == "aten::mkldnn_convolution")
    assert conv.calls == SCHEDULE.active * CONVS_PER_FORWARD
    qconv = sum(
        s.calls for s in passes["int8-inference"].capture.ops if s.name.startswith("onednn::qconv")
    )
    assert qconv == SCHEDULE.active * CONVS_PER_FORWARD
    # Self times are not averaged per step: the ops' total covers three forward passes.
    step_us = [
        e["dur"]
        for e in passes["fp32-inference"].events
        if e.get("name", "").startswith("ProfilerStep#")
    ]
    _, _, totals = summarize(ops)
    assert totals["cpu"] == pytest.approx(sum(step_us), rel=0.05)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "owner", "helpers"),
    [
        ("int8-inference", "quantized_decomposed::quantize_per_tensor", {"aten::round"}),
        (
            "qat-train",
            "aten::fused_moving_avg_obs_fake_quant",
            {"aten::select"},  # inside the fq helper, itself a quantize op
        ),
    ],
)
def test_helper_ops_count_towards_the_quantize_op_that_called_them(
    passes: dict[str, Pass], name: str, owner: str, helpers: set[str]
) -> None:
    p = passes[name]
    assert helpers <= p.names()  # they ran, and the trace keeps them under their own names
    ops = {s.name for s in p.capture.ops if s.device == "cpu"}
    assert owner in ops and not helpers & ops
    # Everything inside the owner (its helpers, nested quantize kernels) is quantize time.
    breakdown, _, _ = summarize(p.capture.ops)
    quantize_us = next(
        r.time_us for r in breakdown if (r.category, r.device) == ("quantize", "cpu")
    )
    inclusive_us = sum(e["dur"] for e in p.events if e.get("name") == owner)
    assert quantize_us >= 0.95 * inclusive_us


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["train", "inference"])
def test_default_traces_stay_small(passes: dict[str, Pass], kind: str) -> None:
    for name, p in passes.items():
        if name.endswith(kind):
            bound = MAX_TRACE_BYTES.get(name, MAX_TRACE_BYTES[kind])
            assert p.capture.trace.stat().st_size < bound, name


# ---------------------------------------------------------------- breakdowns


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fp32-train", "fp32-inference"])
def test_fp32_time_goes_mostly_to_convolutions(passes: dict[str, Pass], name: str) -> None:
    shares = _shares(passes[name].capture.ops)
    assert shares["convolution"] > 0.5, shares
    assert "quantize" not in shares
    assert sum(shares.values()) == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["int8-inference", "qat-train"])
def test_int8_time_splits_into_convolution_and_quantize(passes: dict[str, Pass], name: str) -> None:
    shares = _shares(passes[name].capture.ops)
    assert shares["convolution"] > 0.3, shares
    assert shares["quantize"] > 0, shares


@pytest.mark.slow
def test_harness_regions_are_traced_and_kept_for_the_breakdown_to_drop(
    passes: dict[str, Pass],
) -> None:
    p = passes["fp32-train"]
    regions = [e for e in p.events if e.get("name") == "harness::input"]
    assert len(regions) == SCHEDULE.active
    sample = next(s for s in p.capture.ops if s.name == "harness::input")
    assert sample.calls == SCHEDULE.active
    _, top, _ = summarize(p.capture.ops, top=1000)
    assert "harness::input" not in {t.name for t in top}


@pytest.mark.slow
def test_spec_extras_reach_the_profiler(data: Cifar10, tmp_path: Path) -> None:
    fw, spec = _framework("smoke", "model.width_multiplier=0.125")
    model = fw.build(None)
    shapes = SCHEDULE.model_copy(
        update={"record_shapes": True, "wait": 0, "warmup": 1, "active": 1}
    )
    plain = shapes.model_copy(update={"record_shapes": False})
    work = _inference_work(fw, model, data)
    with_shapes = fw.profile(model, work, shapes, tmp_path, "shapes").trace.read_text()
    without = fw.profile(model, work, plain, tmp_path, "plain").trace.read_text()
    assert '"Input Dims"' in with_shapes
    assert '"Input Dims"' not in without


def test_a_second_profiler_is_refused_with_the_reason(tmp_path: Path) -> None:
    fw, _ = _framework("smoke", "model.width_multiplier=0.125")
    model = fw.build(None)
    with (
        torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]),
        pytest.raises(ProfilerUnavailable, match="already running"),
    ):
        fw.profile(model, lambda i: None, SCHEDULE, tmp_path, "nested")
    assert not (tmp_path / "nested.pt.trace.json").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_pass_reads_kernel_time_or_says_why_it_cannot(data: Cifar10, tmp_path: Path) -> None:
    fw, spec = _framework("smoke", "device=cuda")
    model = fw.build(initial_weights(spec.model, spec.seed))
    capture = fw.profile(model, _train_work(fw, model, data), SCHEDULE, tmp_path, "cuda-train")
    assert capture.device == "cuda:0"
    if not any(s.device == "gpu" for s in capture.ops):
        assert capture.notes == [NO_GPU_EVENTS]
        return
    assert capture.notes == []
    assert _shares(capture.ops, "gpu")["convolution"] > 0
    # Each kernel is counted once, under the op that launched it.
    events = json.loads(capture.trace.read_text())["traceEvents"]
    device_us = sum(
        e["dur"] for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
    )
    _, _, totals = summarize(capture.ops)
    assert totals["gpu"] == pytest.approx(device_us, rel=0.02)


# ---------------------------------------------------------------- threads


def test_threads_for_sets_the_count_then_restores_it() -> None:
    fw = TorchFramework()
    torch.set_num_threads(THREADS)
    with fw.threads_for(None, 1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == THREADS


def test_threads_for_restores_the_count_after_an_error() -> None:
    fw = TorchFramework()
    torch.set_num_threads(THREADS)
    with pytest.raises(RuntimeError, match="boom"), fw.threads_for(None, 1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == THREADS


# ---------------------------------------------------------------- the whole study


@pytest.mark.slow
def test_study_records_every_profile(e2e: E2ERun) -> None:
    """The session's e2e run (the smoke preset through the CLI). Its latency rows, the
    1-thread sweep's included, are checked on the same run in test_cli_e2e.py."""
    spec = build_spec("smoke", overrides=E2E_OVERRIDES)
    metrics, out = e2e.metrics, e2e.fw_dir
    threads = metrics.provenance.threads
    assert metrics.status == "complete"
    expected = {
        "baseline": {"train", "inference"},
        "ptq": {"inference"},
        "qat": {"train", "inference"},
    }
    for variant, kinds in expected.items():
        v = metrics.variants[variant]
        assert v.status == "ok", v.reason
        assert {p.kind for p in v.profiles} == kinds
        for p in v.profiles:
            assert p.status == "ok", p.reason
            assert p.tool == "torch.profiler" and p.viewer == "perfetto"
            assert p.steps == spec.measure.profile.active and p.threads == threads
            assert (out / p.trace).is_file() and p.trace_bytes == (out / p.trace).stat().st_size
            assert p.total_us["cpu"] > 0
            assert "convolution" in {row.category for row in p.breakdown}
    train = next(p for p in metrics.variants["baseline"].profiles if p.kind == "train")
    assert "data" in {row.category for row in train.breakdown}  # the stream's hand-over time
    assert Counter(p.name for p in (out / "traces").iterdir()) == Counter(
        f"{v}-{k}.pt.trace.json" for v, kinds in expected.items() for k in kinds
    )
