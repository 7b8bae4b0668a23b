"""TensorFlow profiling: tf.profiler traces TensorBoard opens, op breakdowns, int8 and threads."""

from __future__ import annotations

import json
import os
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tf_runner  # noqa: F401 - sets TF_USE_LEGACY_KERAS before TensorFlow is first imported
from harness_contract.data.cifar import Cifar10, load_cifar10
from harness_contract.metrics import MetricsFile, read_metrics
from harness_contract.model.weights import initial_weights
from harness_contract.spec import ProfileSpec, build_spec
from harness_contract.study.breakdown import OpSample, summarize
from harness_contract.study.framework import (
    ProfileCapture,
    ProfilerUnavailable,
    Quantized,
    ThreadsUnsupported,
)

pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
pytest.importorskip("tensorflow_model_optimization", reason="tfmot is not installed")
raw_to_tool_data = pytest.importorskip(
    "xprof.convert.raw_to_tool_data", reason="tensorboard-plugin-profile is not installed"
)

from tests.test_tf_runner import THREADS, _framework, _runner  # noqa: E402
from tf_runner import profile as tf_profile  # noqa: E402
from tf_runner.runner import TFFramework  # noqa: E402

SCHEDULE = ProfileSpec(wait=1, warmup=1, active=2)
FIRST_ACTIVE = SCHEDULE.wait + SCHEDULE.warmup
TINY = ("model.width_multiplier=0.125", "model.zero_init_residual=false")


@dataclass(frozen=True)
class Tiny:
    fw: TFFramework
    model: Any
    ptq: Quantized
    data: Cifar10


@pytest.fixture(scope="module")
def tiny(synthetic_data: Path) -> Tiny:
    fw, spec = _framework("smoke", *TINY)
    data = load_cifar10(synthetic_data, 64, 32)
    model = fw.build(initial_weights(spec.model, spec.seed))
    q = fw.quantize_ptq(model, [data.train_images[:16]])
    return Tiny(fw, model, q, data)


def _train_work(t: Tiny, model: Any) -> Callable[[int], None]:
    """Training steps as the pipeline gives them: input fetch marked as a region, and the
    last step waits for the device."""
    trainer = t.fw.trainer(model, t.fw.spec.train)

    def work(i: int) -> None:
        with t.fw.region("harness::input"):
            images, labels = t.data.train_images[:16], t.data.train_labels[:16]
        trainer.step(images, labels, 0.01)
        if i == SCHEDULE.steps - 1:
            trainer.end_epoch()

    return work


def _inference_work(t: Tiny, model: Any) -> Callable[[int], object]:
    call, _ = t.fw.latency_call(model, t.data.test_images[:8])
    return lambda i: call()


def _xplanes(capture: ProfileCapture) -> list[Path]:
    return sorted(capture.trace.glob("plugins/profile/*/*.xplane.pb"))


def _trace_events(xplanes: list[Path]) -> list[dict]:
    data, _ = raw_to_tool_data.xspace_to_tool_data([str(p) for p in xplanes], "trace_viewer", {})
    return json.loads(data)["traceEvents"]


def _runs_tensorboard_lists(logdir: Path) -> list[str]:
    """The profile runs TensorBoard's profile plugin finds under ``--logdir logdir``."""
    from xprof.profile_plugin import ProfilePlugin

    context = types.SimpleNamespace(
        logdir=str(logdir),
        data_provider=None,
        flags=types.SimpleNamespace(master_tpu_unsecure_channel=""),
    )
    return list(ProfilePlugin(context).generate_runs())


def _assert_tensorboard_trace(capture: ProfileCapture, trace_dir: Path, name: str) -> list[dict]:
    assert capture.tool == "tf.profiler (xplane)" and capture.viewer == "tensorboard"
    assert capture.device == "cpu" and capture.trace == trace_dir / name
    xplanes = _xplanes(capture)
    assert len(xplanes) == 1
    run = xplanes[0].parent.name
    assert _runs_tensorboard_lists(capture.trace) == [run]
    assert _runs_tensorboard_lists(trace_dir) == [f"{name}/{run}"]
    tools = raw_to_tool_data.xspace_to_tool_names([str(p) for p in xplanes])
    assert "framework_op_stats" in tools and "trace_viewer@" in tools
    events = _trace_events(xplanes)
    steps = {int(e["args"]["step_num"]) for e in events if "step_num" in e.get("args", {})}
    # Only the active steps were traced, each marked as a step.
    assert steps == set(range(FIRST_ACTIVE, SCHEDULE.steps))
    return events


def _share(samples: list[OpSample], category: str) -> float:
    breakdown, _, totals = summarize(samples)
    assert totals["cpu"] > 0
    return next((b.share for b in breakdown if b.category == category and b.device == "cpu"), 0.0)


# ---------------------------------------------------------------- Keras models


def test_a_keras_training_pass_leaves_a_tensorboard_trace_mostly_spent_in_convolutions(
    tiny: Tiny, tmp_path: Path
) -> None:
    model = tiny.fw.build(initial_weights(tiny.fw.spec.model, tiny.fw.spec.seed))
    capture = tiny.fw.profile(model, _train_work(tiny, model), SCHEDULE, tmp_path, "baseline-train")
    events = _assert_tensorboard_trace(capture, tmp_path, "baseline-train")
    assert sum(e.get("name") == "harness::input" for e in events) == SCHEDULE.active
    names = {s.name for s in capture.ops}
    # Both convolution gradients are traced: oneDNN's fused kernels where TF turns oneDNN on
    # (_MklNativeConv2DBackpropFilterWithBias, on CPUs with AVX-512 VNNI and up), the stock
    # Conv2DBackpropFilter/Input elsewhere (an AVX2-only AMD EPYC, 2026-12-06).
    for gradient in ("Conv2DBackpropFilter", "Conv2DBackpropInput"):
        assert any(gradient in name for name in names), (gradient, sorted(names))
    assert all(s.device == "cpu" and s.self_us >= 0 for s in capture.ops)
    assert _share(capture.ops, "convolution") > 0.3


def test_a_keras_inference_pass_traces_only_the_active_forward_calls(
    tiny: Tiny, tmp_path: Path
) -> None:
    capture = tiny.fw.profile(
        tiny.model, _inference_work(tiny, tiny.model), SCHEDULE, tmp_path, "baseline-inference"
    )
    _assert_tensorboard_trace(capture, tmp_path, "baseline-inference")
    # One dense layer per forward pass: one matmul call per traced step.
    matmuls = [s for s in capture.ops if "MatMul" in s.name]
    assert sum(s.calls for s in matmuls) == SCHEDULE.active
    assert _share(capture.ops, "convolution") > 0.5


def test_a_second_pass_under_the_same_name_replaces_the_first(tiny: Tiny, tmp_path: Path) -> None:
    for _ in range(2):
        capture = tiny.fw.profile(
            tiny.model, _inference_work(tiny, tiny.model), SCHEDULE, tmp_path, "ptq-inference"
        )
    assert len(_xplanes(capture)) == 1


def test_a_pass_whose_work_fails_stops_the_profiler_for_the_next_one(
    tiny: Tiny, tmp_path: Path
) -> None:
    forward = _inference_work(tiny, tiny.model)

    def failing(i: int) -> object:
        if i == FIRST_ACTIVE:
            raise RuntimeError("the step broke")
        return forward(i)

    with pytest.raises(RuntimeError, match="the step broke"):
        tiny.fw.profile(tiny.model, failing, SCHEDULE, tmp_path, "baseline-inference")
    capture = tiny.fw.profile(tiny.model, forward, SCHEDULE, tmp_path, "baseline-inference")
    assert len(_xplanes(capture)) == 1 and capture.ops


def test_without_tensorboards_profile_plugin_the_trace_is_kept_without_ops(
    tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise ImportError("No module named 'xprof'")

    monkeypatch.setattr(tf_profile, "_xprof", missing)
    capture = tiny.fw.profile(
        tiny.model, _inference_work(tiny, tiny.model), SCHEDULE, tmp_path, "baseline-inference"
    )
    assert capture.ops == [] and len(_xplanes(capture)) == 1
    assert any("tensorboard-plugin-profile" in note for note in capture.notes)


# ---------------------------------------------------------------- int8 (LiteRT)


def test_int8_profiling_is_refused_with_the_reason(tiny: Tiny, tmp_path: Path) -> None:
    work = _inference_work(tiny, tiny.ptq.model)
    with pytest.raises(ProfilerUnavailable) as caught:
        tiny.fw.profile(tiny.ptq.model, work, SCHEDULE, tmp_path, "ptq-inference")
    reason = caught.value.one_line()
    assert "no per-op profiler" in reason and "--enable_op_profiling" in reason
    assert "\n" not in reason
    assert not (tmp_path / "ptq-inference").exists()


# ---------------------------------------------------------------- threads


def _new_os_threads(body: Callable[[], object]) -> int:
    before = len(os.listdir("/proc/self/task"))
    body()
    return len(os.listdir("/proc/self/task")) - before


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_threads_for_runs_int8_latency_on_that_many_interpreter_threads(tiny: Tiny) -> None:
    """XNNPACK starts num_threads - 1 worker threads per interpreter: the count is visible."""
    fw, model, images = tiny.fw, tiny.ptq.model, tiny.data.test_images

    def latency_run(batch: int) -> Callable[[], object]:
        return lambda: fw.latency_call(model, images[:batch])[0]()

    reference = fw.predict(model, images[:7])
    with fw.threads_for(model, 1):
        assert _new_os_threads(latency_run(7)) == 0
        one_thread = fw.predict(model, images[:7])
    assert _new_os_threads(latency_run(9)) == THREADS - 1  # restored to the run's threads
    assert model.threads == THREADS
    np.testing.assert_array_equal(one_thread, reference)  # same int8 arithmetic


def test_threads_for_a_keras_model_says_why_it_cannot(tiny: Tiny) -> None:
    with pytest.raises(ThreadsUnsupported) as caught, tiny.fw.threads_for(tiny.model, 1):
        pytest.fail("the block must not run")
    assert "intra-op thread pool" in caught.value.one_line()


# ---------------------------------------------------------------- a whole study

STUDY = [
    "device=cpu",
    f"measure.threads={THREADS}",
    *TINY,
    "data.train_limit=128",
    "data.test_limit=64",
    "train.epochs=1",
    "train.batch_size=32",
    "qat.epochs=1",
    "qat.batch_size=32",
    "ptq.calibration_samples=32",
    "measure.eval_batch_size=64",
    "measure.latency.batch_sizes=[1,8]",
    "measure.latency.min_count=3",
    "measure.latency.min_seconds=0",
    "measure.latency.warmup_count=1",
    "measure.latency.warmup_seconds=0",
    "measure.profile.inference_batch_size=8",
]


@dataclass(frozen=True)
class Profiled:
    out: Path
    metrics: MetricsFile


@pytest.fixture(scope="module")
def study(synthetic_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Profiled:
    root = tmp_path_factory.mktemp("tf-profile-study")
    spec = root / "spec.json"
    # The smoke preset leaves the 1-thread sweep out; this study checks it.
    sweep = ["measure.latency.thread_sweep=true"]
    spec.write_text(build_spec("smoke", overrides=[*STUDY, *sweep]).to_json())
    out = root / "run" / "tensorflow"
    proc = _runner(spec, synthetic_data, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Profiled(out, read_metrics(out / "metrics.json"))


@pytest.mark.slow
def test_a_study_profiles_keras_passes_and_says_why_int8_ones_have_no_ops(study: Profiled) -> None:
    variants = study.metrics.variants
    statuses = {
        (name, p.kind): p.status for name, variant in variants.items() for p in variant.profiles
    }
    assert statuses == {
        ("baseline", "train"): "ok",
        ("baseline", "inference"): "ok",
        ("ptq", "inference"): "unavailable",
        ("qat", "train"): "ok",
        ("qat", "inference"): "unavailable",
    }
    for name, variant in variants.items():
        for p in variant.profiles:
            assert p.threads == THREADS
            if p.status == "unavailable":
                assert "no per-op profiler" in p.reason and p.trace is None
                continue
            trace = study.out / p.trace
            assert p.tool == "tf.profiler (xplane)" and p.viewer == "tensorboard"
            assert len(list(trace.glob("plugins/profile/*/*.xplane.pb"))) == 1, (name, p.kind)
            assert p.trace_bytes > 0 and p.total_us["cpu"] > 0
            shares = {b.category: b.share for b in p.breakdown}
            assert shares["convolution"] > 0.3, (name, p.kind, shares)
            assert p.steps == 3 and p.batch_size == (32 if p.kind == "train" else 8)
    qat_train = variants["qat"].profile("train")
    assert any(b.category == "quantize" for b in qat_train.breakdown)  # tfmot's FakeQuant ops


@pytest.mark.slow
def test_a_study_adds_one_thread_latency_for_int8_and_a_note_for_keras(study: Profiled) -> None:
    variants = study.metrics.variants
    for name in ("ptq", "qat"):
        rows = [(lat.threads, lat.batch_size) for lat in variants[name].latency]
        assert rows == [(THREADS, 1), (THREADS, 8), (1, 1), (1, 8)], name
        assert (study.out / variants[name].latency_at(8, threads=1).samples_file).is_file()
    baseline = variants["baseline"]
    assert {lat.threads for lat in baseline.latency} == {THREADS}
    note = next(n for n in baseline.notes if n.startswith("no latency at 1 thread(s)"))
    assert "intra-op thread pool" in note
