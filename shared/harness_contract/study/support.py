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
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness_contract.failures import reason_of
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import ProbeResult, SupportMatrix
from harness_contract.spec.frameworks import SupportSpec
from harness_contract.study.framework import Framework


@dataclass(frozen=True)
class Probe:
    slug: str
    area: str  # Table IV's rows: hardware, profiler, quantization, analysis; transformer
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
    # The Transformer the paper began with: where the int8 tool chains differ.
    Probe(
        "int8_attention_matmul",
        "transformer",
        "attention matmuls (activation x activation) in int8",
    ),
    Probe("int8_softmax", "transformer", "softmax runs in int8"),
    Probe("int8_layer_norm", "transformer", "LayerNorm runs in int8"),
    Probe(
        "profiler_attention",
        "transformer",
        "profiler traces the int8 attention block op by op (matmul, softmax, LayerNorm)",
    ),
    Probe("qat_transformer", "transformer", "QAT of LayerNorm and attention, unannotated"),
)
OUTCOMES = ("yes", "no", "not probed")
EXIT_GRACE_S = 2.0  # how long a child that answered (or died) may take to exit
CHILD = "harness_contract.study.support_child"
ANSWER = "@@probe "  # each answer line's prefix on the answer pipe


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


class _Answers:
    """Lines from the child's answer pipe, read with os.read into a buffer of our own, so
    waiting with select() never misses a line already read (a buffered reader would)."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer, self.eof = fd, b"", False

    def next_line(self, deadline: float) -> str | None:
        """The next complete line; None when the deadline passes or the child closed the
        pipe first (``eof``)."""
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if self.eof or left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            self.eof = not chunk
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode("utf-8", errors="replace")


def _run_child(module: str, slugs: list[str], timeout_s: float, log: Path) -> list[ProbeResult]:
    """Run ``slugs`` in order in one child; stop at the first that overruns its bound (or
    the child dying), recording it, and return what was answered.

    Answers come on a pipe of their own: whatever a probe's libraries print on stdout or
    stderr goes to probes.log and cannot be mistaken for (or hide) an answer.
    """
    by_slug = {p.slug: p for p in PROBES}
    read_fd, write_fd = os.pipe()
    try:
        with open(log, "a") as err:
            child = subprocess.Popen(
                [sys.executable, "-m", CHILD, str(write_fd), module, *slugs],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                pass_fds=(write_fd,),
                start_new_session=True,  # so a hung probe's whole process group can be killed
            )
    finally:
        os.close(write_fd)  # the child holds it now: its exit is our end of file
    answers = _Answers(read_fd)
    results: list[ProbeResult] = []
    try:
        for slug in slugs:
            started = time.monotonic()
            line = answers.next_line(started + timeout_s)
            if line is None:  # overran its bound, or the child died mid-probe
                results.append(_unanswered(by_slug[slug], child, answers.eof, timeout_s, started))
                return results
            results.append(_parse(by_slug[slug], line, time.monotonic() - started))
        return results
    finally:
        os.close(read_fd)
        _end(child)


def _unanswered(
    probe: Probe, child: subprocess.Popen, eof: bool, timeout_s: float, started: float
) -> ProbeResult:
    if eof:  # the child closed its answers: it died (give its exit status a moment)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=EXIT_GRACE_S)
        code = child.returncode if child.returncode is not None else "unknown"
        detail = f"the probe process died (exit {code}); see probes.log"
        return _result(probe, "no", detail, time.monotonic() - started)
    detail = f"stopped after {timeout_s:g} s (support.timeout_s)"
    return _result(probe, "timed out", detail, time.monotonic() - started)


def _parse(probe: Probe, line: str, seconds: float) -> ProbeResult:
    try:
        raw = json.loads(line.removeprefix(ANSWER))
        outcome, detail = raw["outcome"], raw.get("detail")
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
    except (ValueError, KeyError, TypeError) as exc:
        return _result(probe, "no", f"unreadable probe answer: {reason_of(exc)}", seconds)
    return _result(probe, outcome, detail, raw.get("seconds", seconds))


def _end(child: subprocess.Popen) -> None:
    """Let a child that answered everything exit on its own for a moment (a library's
    leftover thread can keep it alive), then kill its whole process group."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=EXIT_GRACE_S)
        return
    with contextlib.suppress(ProcessLookupError):  # it died on its own meanwhile
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()
