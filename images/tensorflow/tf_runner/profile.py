"""Profiler passes for the TensorFlow runner.

* Keras models (fp32, and the tfmot QAT model while it trains): ``tf.profiler`` writes an
  xplane into a TensorBoard log directory (``<trace_dir>/<name>/plugins/profile/<run>/
  <host>.xplane.pb``, what ``tensorboard --logdir <trace_dir>/<name>`` opens), and
  TensorBoard's own profile plugin (``xprof``) reads its op table back: self time per
  TensorFlow op type and device.
* int8 models run in the LiteRT interpreter, whose Python API has no op profiler: the
  pass is refused with that reason rather than guessed at.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import tensorflow as tf

from harness_contract.spec import ProfileSpec
from harness_contract.study.breakdown import OpSample
from harness_contract.study.framework import ProfileCapture, ProfilerUnavailable

TOOL = "tf.profiler (xplane)"
# ai_edge_litert's Interpreter wraps tflite::Interpreter without SetProfiler or any
# profiling accessor, and its CompiledModel API exposes no profiler either.
LITERT_NO_OP_PROFILER = (
    "the LiteRT Python interpreter (ai_edge_litert) exposes no per-op profiler; "
    "per-op int8 times need LiteRT's benchmark_model binary with --enable_op_profiling=true"
)
NEEDS_XPROF = (
    "no op breakdown: reading the xplane needs TensorBoard's profile plugin "
    "(pip install tensorboard-plugin-profile); the trace is kept"
)
_DEVICES = {"Host": "cpu", "Device": "gpu"}


def run_profile(
    work: Callable[[int], object],
    schedule: ProfileSpec,
    trace_dir: Path,
    name: str,
    device: str,
) -> ProfileCapture:
    """Profile a Keras model's ``work`` on ``device`` ("cpu", "cuda:0"): run the untraced
    ``wait + warmup`` steps, then trace the ``active`` ones, each marked as a step
    (TensorBoard's step-time view reads these markers), into ``<trace_dir>/<name>/``."""
    logdir = trace_dir / name
    shutil.rmtree(logdir, ignore_errors=True)  # a rerun must not leave two runs to pick from
    step_name = "train" if name.endswith("train") else "inference"
    first_active = schedule.wait + schedule.warmup
    for i in range(first_active):
        work(i)
    # TensorFlow ops on the host, device kernels, no Python calls. (TF 2.21 drops these
    # options with "host_tracer_level expects an i value" and uses its defaults, which are
    # these same levels.)
    options = tf.profiler.experimental.ProfilerOptions(
        host_tracer_level=2, python_tracer_level=0, device_tracer_level=1
    )
    try:
        tf.profiler.experimental.start(str(logdir), options=options)
    except tf.errors.AlreadyExistsError as exc:
        raise ProfilerUnavailable(
            "another TensorFlow profiler session is already running in this process"
        ) from exc
    try:
        for i in range(first_active, schedule.steps):
            with tf.profiler.experimental.Trace(step_name, step_num=i, _r=1):
                work(i)  # the work waits for the device (last train step, .numpy())
    except BaseException:
        tf.profiler.experimental.stop(save=False)
        raise
    tf.profiler.experimental.stop()
    xplanes = sorted(logdir.glob("plugins/profile/*/*.xplane.pb"))
    if not xplanes:
        raise RuntimeError(f"tf.profiler wrote no plugins/profile/<run>/*.xplane.pb under {logdir}")
    capture = ProfileCapture(tool=TOOL, device=device, trace=logdir, viewer="tensorboard")
    try:
        capture.ops = op_samples(xplanes)
    except ImportError:
        capture.notes.append(NEEDS_XPROF)
        return capture
    capture.notes.append(
        "ops are TensorFlow op types; oneDNN's fused kernels (_MklNativeFusedConv2D, "
        "_MklNativeFusedMatMul) include the bias add and activation fused into them"
    )
    return capture


def op_samples(xplanes: list[Path]) -> list[OpSample]:
    """Self time per (op type, host/device) from TensorBoard's framework_op_stats table.

    Raises ImportError when tensorboard-plugin-profile (``xprof``) is not installed.
    """
    raw_to_tool_data = _xprof()
    data, _ = raw_to_tool_data.xspace_to_tool_data(
        [str(p) for p in xplanes], "framework_op_stats", {}
    )
    if not data:
        raise RuntimeError(f"TensorBoard's profile plugin could not read {xplanes[0]}")
    table = json.loads(data)[0]  # all ops with IDLE; the second table is the same without it
    column = {col["id"]: i for i, col in enumerate(table["cols"])}
    merged: dict[tuple[str, str], list[float]] = {}
    for row in table["rows"]:
        cells = [cell.get("v") for cell in row["c"]]
        device = _DEVICES.get(cells[column["host_or_device"]])
        if device is None:
            continue
        entry = merged.setdefault((cells[column["type"]], device), [0.0, 0])
        entry[0] += float(cells[column["total_self_time"]])
        entry[1] += int(cells[column["occurrences"]])
    return [
        OpSample(name=op_type, device=device, self_us=us, calls=calls)
        for (op_type, device), (us, calls) in merged.items()
    ]


def _xprof() -> Any:
    """xprof's converter with its native INFO lines muted: its library reads
    TF_CPP_MIN_LOG_LEVEL once, when it loads, so the variable is raised only for that
    moment (a stricter level the user set is kept; TensorFlow's own logging is untouched)."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    with _env("TF_CPP_MIN_LOG_LEVEL", level if level and level != "0" else "1"):
        from xprof.convert import raw_to_tool_data
    return raw_to_tool_data


@contextlib.contextmanager
def _env(key: str, value: str) -> Iterator[None]:
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old
