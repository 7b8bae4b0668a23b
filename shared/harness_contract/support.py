"""The support matrix: each capability of the paper's Table IV ("major issues discovered"),
probed at the installed versions instead of written down by hand.

Both runners answer the same questions (PROBES). Each framework's answers come from its
``probes_module`` (a dict ``PROBES`` of slug -> function returning (outcome, detail)),
run in a child process so a probe that hangs or crashes the interpreter is stopped at
its bound and recorded, and the study it belongs to never fails because of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .failures import reason_of
from .framework import Framework
from .layout import FrameworkDir
from .metrics import ProbeResult, SupportMatrix
from .spec_frameworks import SupportSpec


@dataclass(frozen=True)
class Probe:
    slug: str
    area: str  # Table IV's rows: hardware, profiler, quantization, analysis
    question: str


PROBES: tuple[Probe, ...] = (
    Probe("int8_cpu", "hardware", "int8 inference on CPU"),
    Probe("int8_gpu", "hardware", "int8 inference on a GPU"),
    Probe("int8_native", "hardware", "int8 runs in the framework itself (no separate interpreter)"),
    Probe("profiler_training", "profiler", "profiler traces a training step of the model's layers"),
    Probe("profiler_int8", "profiler", "profiler traces int8 inference op by op"),
    Probe("auto_fusion", "quantization", "conv + ReLU fused automatically when quantizing"),
    Probe("auto_setup", "quantization", "PTQ without hand-placed quant stubs or annotations"),
    Probe("qat_convert", "quantization", "QAT model converts to a real int8 model"),
    Probe("custom_layer", "quantization", "QAT of a model with a custom layer, unannotated"),
    Probe("embedding", "quantization", "an Embedding layer quantizes to int8"),
    Probe("per_layer_access", "analysis", "intermediate int8 tensors of each layer readable"),
    Probe("int8_export", "analysis", "int8 model exports to a portable file and reloads"),
)
OUTCOMES = ("yes", "no", "not probed")
CHILD = "harness_contract.support_child"


def probe_support(fw: Framework, spec: SupportSpec, out: FrameworkDir) -> SupportMatrix | None:
    """Every probe's outcome for ``fw`` (None when the framework has no probes module).

    Never raises for a probe: a probe that raises is a "no" with its error, one that
    outlives ``spec.timeout_s`` is killed and "timed out", and the rest still run.
    """
    if fw.probes_module is None:
        return None
    results: list[ProbeResult] = []
    pending = [p.slug for p in PROBES]
    log = out.path / "probes.log"
    while pending:
        answered = _run_child(fw.probes_module, pending, spec.timeout_s, log)
        results += answered
        pending = pending[len(answered) :]
    by_slug = {r.probe: r for r in results}
    return SupportMatrix(
        versions=fw.versions(),
        timeout_s=spec.timeout_s,
        probes=[by_slug[p.slug] for p in PROBES],
    )


def _result(probe: Probe, outcome: str, detail: str | None, seconds: float) -> ProbeResult:
    return ProbeResult(
        probe=probe.slug,
        area=probe.area,
        question=probe.question,
        outcome=outcome,  # type: ignore[arg-type]
        detail=detail,
        seconds=round(seconds, 3),
    )


def _run_child(module: str, slugs: list[str], timeout_s: float, log: Path) -> list[ProbeResult]:
    """Run ``slugs`` in order in one child; stop at the first that overruns its bound (or
    the child dying), recording it, and return what was answered."""
    by_slug = {p.slug: p for p in PROBES}
    with open(log, "a") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", CHILD, module, *slugs],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,  # so a hung probe's whole process group can be killed
            env=os.environ.copy(),
        )
    assert child.stdout is not None
    results: list[ProbeResult] = []
    with selectors.DefaultSelector() as sel:
        sel.register(child.stdout, selectors.EVENT_READ)
        for slug in slugs:
            started = time.monotonic()
            line = _read_line(sel, child, started + timeout_s)
            if line is None:  # overran its bound, or the child died mid-probe
                alive = child.poll() is None
                _kill(child)
                detail = (
                    f"stopped after {timeout_s:g} s (support.timeout_s)"
                    if alive
                    else f"the probe process died (exit {child.returncode}); see probes.log"
                )
                outcome = "timed out" if alive else "no"
                results.append(_result(by_slug[slug], outcome, detail, time.monotonic() - started))
                return results
            results.append(_parse(by_slug[slug], line, time.monotonic() - started))
    child.wait()
    return results


def _read_line(sel: selectors.BaseSelector, child: subprocess.Popen, deadline: float) -> str | None:
    assert child.stdout is not None
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            return None
        line = child.stdout.readline()
        if not line:  # end of file: the child exited
            return None
        if line.startswith("@@probe "):
            return line.removeprefix("@@probe ")


def _parse(probe: Probe, line: str, seconds: float) -> ProbeResult:
    try:
        raw = json.loads(line)
        outcome, detail = raw["outcome"], raw.get("detail")
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
    except (ValueError, KeyError, TypeError) as exc:
        return _result(probe, "no", f"unreadable probe answer: {reason_of(exc)}", seconds)
    return _result(probe, outcome, detail, raw.get("seconds", seconds))


def _kill(child: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # it died on its own meanwhile
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()
