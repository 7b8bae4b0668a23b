"""One real smoke run through the host CLI (`harness run pytorch --preset smoke`), made
once per test session by the ``e2e`` fixture (conftest.py) and read by every test that
needs a real run: the CLI's files and messages, resume, and its reproduction."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness_contract.metrics import MetricsFile, read_metrics

# The smoke preset as users run it, with what it leaves out for time switched back on (so
# this run proves them) and a shorter latency stop rule so the suite stays within its
# time budget (the rule itself is tested in test_latency.py). The support probes stay
# off: they answer for the installed versions, not the run, and tests/test_torch_probes.py
# runs every one of them in the fast tier (this run and its reproduction would pay them
# twice more).
E2E_OVERRIDES = [
    # A converged baseline, so "int8 keeps the baseline's accuracy" means something: on
    # the smoke's own 1,000 images QAT's extra epoch alone gains 10 points.
    "data.train_limit=2000",
    "analysis.keep_float=[1]",
    # Every variant on every runtime rung (smoke measures PTQ's only): the run proves
    # each rung end to end and its reproduction proves every model file deterministic.
    "measure.rung_variants=[baseline,ptq,qat]",
    "measure.latency.thread_sweep=true",  # the smoke preset leaves the 1-thread rows out
    "measure.latency.warmup_count=2",
    "measure.latency.warmup_seconds=0",
    "measure.latency.min_count=5",
    "measure.latency.min_seconds=0",
]
E2E_TIMEOUT_S = 900


def sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


@dataclass(frozen=True)
class E2ERun:
    proc: subprocess.CompletedProcess[str]
    run_dir: Path
    data: Path

    @property
    def fw_dir(self) -> Path:
        return self.run_dir / "pytorch"

    @property
    def metrics(self) -> MetricsFile:
        return read_metrics(self.fw_dir / "metrics.json")


def run_smoke(data: Path, results: Path) -> E2ERun:
    cmd = [sys.executable, "-m", "harness", "run", "pytorch", "--preset", "smoke"]
    cmd += ["--data", str(data), "--results", str(results), "--run-id", "e2e"]
    proc = subprocess.run(
        cmd + sets(E2E_OVERRIDES), capture_output=True, text=True, timeout=E2E_TIMEOUT_S
    )
    log = results / "e2e" / "pytorch" / "runner.log"
    tail = log.read_text()[-2000:] if log.is_file() else "(no runner.log)"
    assert proc.returncode == 0, f"{proc.stderr[-2000:]}\n--- runner.log ---\n{tail}"
    return E2ERun(proc, results / "e2e", data)
