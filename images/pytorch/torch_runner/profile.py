"""One scheduled torch.profiler pass: a Chrome/Perfetto trace on disk and the ops' self times.

The pass runs ``work(i)`` for ``schedule.steps`` steps: ``wait`` untraced, ``warmup``
traced and discarded, ``active`` recorded. Self times are totals over the active
steps (nothing is divided). GPU time is read off the CPU-side op that launched each
kernel, so both devices' rows carry op names the shared categories understand.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.profiler import schedule as steps_schedule

from harness_contract.spec import ProfileSpec
from harness_contract.study.breakdown import OpSample, categorize
from harness_contract.study.framework import ProfileCapture, ProfilerUnavailable

TOOL = "torch.profiler"
# Categories of ops that own the time of the helper ops they call.
_COMPOUND = frozenset({"convolution", "matmul", "quantize", "normalization", "pooling"})
_category = functools.lru_cache(maxsize=4096)(categorize)
NO_GPU_EVENTS = (
    "no GPU kernels were recorded, so the breakdown covers CPU-side ops only: CUPTI gave "
    "the profiler no device activity, which usually means GPU profiling is not permitted "
    "here (a container without CAP_SYS_ADMIN, or the driver option "
    "NVreg_RestrictProfilingPermission=1)"
)


def run_profile(
    work: Callable[[int], object],
    schedule: ProfileSpec,
    trace_dir: Path,
    name: str,
    device: str,
) -> ProfileCapture:
    """Profile ``work`` on ``device`` ("cpu", "cuda:0") under ``schedule``; write the trace
    to ``<trace_dir>/<name>.pt.trace.json`` (Chrome/Perfetto JSON) and return the ops of
    the active steps."""
    trace_path = trace_dir / f"{name}.pt.trace.json"
    on = torch.device(device)
    if not torch.autograd.kineto_available():
        raise ProfilerUnavailable("this torch build has no Kineto profiler (torch.profiler)")
    if getattr(torch.autograd.profiler, "_is_profiler_enabled", False):
        raise ProfilerUnavailable("another torch.profiler session is already running")
    on_cuda = on.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    sync = torch.cuda.synchronize if on_cuda else (lambda: None)
    trace_path.parent.mkdir(parents=True, exist_ok=True)

    def export(prof: profile) -> None:
        partial = trace_path.with_name(trace_path.name + ".partial")
        prof.export_chrome_trace(str(partial))
        os.replace(partial, trace_path)  # a trace on disk is always a whole one

    with profile(
        activities=activities,
        schedule=steps_schedule(
            wait=schedule.wait, warmup=schedule.warmup, active=schedule.active, repeat=1
        ),
        on_trace_ready=export,
        record_shapes=schedule.record_shapes,
        with_stack=schedule.with_stack,
        profile_memory=schedule.profile_memory,
    ) as prof:
        for i in range(schedule.steps):
            work(i)
            sync()
            prof.step()
    if not trace_path.is_file():
        raise RuntimeError(f"torch.profiler wrote no trace to {trace_path}")
    ops, kernel_us = op_samples(prof.events())
    notes = []
    if on_cuda and kernel_us == 0:
        notes.append(NO_GPU_EVENTS)
    return ProfileCapture(
        tool=TOOL, device=str(on), trace=trace_path, viewer="perfetto", ops=ops, notes=notes
    )


def op_samples(events: Iterable[Any]) -> tuple[list[OpSample], float]:
    """OpSamples from ``prof.events()``, and the recorded GPU kernels' total (µs).

    CPU events give self CPU time; their self device time (the kernels they launched)
    gives the "gpu" rows. Kernel events are not repeated: their time is in the op that
    launched them, except what no op launched, kept as one "other" row.

    Self time alone would file a compound op's helpers by their own names: the mul,
    round and clamp inside a decomposed ``quantize_per_tensor``, the copy inside
    ``onednn::qconv2d_pointwise``, the per-channel loop of the fused fake-quant
    observer. An op that is not itself a convolution, matmul, quantize, normalization
    or pooling op therefore counts towards the nearest enclosing op that is.
    """
    rows: dict[str, list[float]] = {}  # name -> [self cpu µs, self device µs, calls]
    owners: dict[int, Any] = {}  # id(event) -> the event its time counts towards
    kernel_us = 0.0
    for evt in events:
        if evt.device_type != DeviceType.CPU:
            # Region markers are mirrored onto the GPU timeline as spans: not kernels.
            if not getattr(evt, "is_user_annotation", False):
                kernel_us += evt.self_device_time_total
            continue
        if evt.is_async:
            continue
        owner = _owner(evt, owners)
        row = rows.setdefault(owner.name, [0.0, 0.0, 0])
        row[0] += evt.self_cpu_time_total
        row[1] += evt.self_device_time_total
        row[2] += owner is evt
    samples: list[OpSample] = []
    attributed_us = 0.0
    for name, (cpu_us, gpu_us, calls) in rows.items():
        if cpu_us > 0:
            samples.append(OpSample(name, "cpu", cpu_us, int(calls)))
        if gpu_us > 0:
            samples.append(OpSample(name, "gpu", gpu_us, int(calls)))
            attributed_us += gpu_us
    unattributed = kernel_us - attributed_us
    if unattributed > 0.01 * kernel_us:
        samples.append(OpSample("gpu kernels outside any op", "gpu", unattributed, 1, "other"))
    return samples, kernel_us


def _owner(evt: Any, owners: dict[int, Any]) -> Any:
    """The op an event's time counts towards: itself, or its nearest compound ancestor."""
    key = id(evt)
    if key not in owners:
        parent = evt.cpu_parent
        if _category(evt.name) in _COMPOUND or parent is None:
            owners[key] = evt
        else:
            found = _owner(parent, owners)
            owners[key] = found if _category(found.name) in _COMPOUND else evt
    return owners[key]
