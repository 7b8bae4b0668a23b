"""A stand-in runner for host tests: the real entrypoint's arguments, metrics.json of
the real schema, and a behaviour chosen by $FAKE_RUNNER (``<framework>=<mode>,...`` or
one mode for all) so the CLI's handling of each ending is tested in seconds.

Modes: complete, phase_failed, crash_once (exit 1 on the first attempt only: the file
$FAKE_RUNNER_MARKER remembers it), slow (complete after $FAKE_RUNNER_SLOW_S seconds),
sleep (until SIGTERM, then 'interrupted' like a real runner), stubborn (ignores
SIGTERM), killed (SIGKILL before writing metrics), crash (leaves 'running', exits 1),
killed_mid_phase (SIGKILL during the ptq phase, right after a warning's last line).
Every mode first prints its pid and the run's lock file, for the tests to check.

A complete run saves deterministic model files (artifacts/<variant>.bin) with their
digests, sizes, accuracy and latency rows with raw samples, as a real runner does, so
``harness reproduce`` can be tested: $FAKE_RUNNER_SALT changes the files' bytes (not their size) and
$FAKE_RUNNER_CPU the recorded CPU model (a rerun "elsewhere").
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from harness_contract import events
from harness_contract.entrypoint import parse_args
from harness_contract.fs.digests import artifact_digests
from harness_contract.metrics import (
    DatasetInfo,
    MetricsFile,
    Provenance,
    VariantMetrics,
    now_iso,
    write_metrics,
)
from harness_contract.metrics.figures import AccuracyStats, LatencyStats, SizeStats

VARIANTS = ("baseline", "ptq", "qat")


def metrics_for(
    framework: str, run_id: str, status: str = "complete", out: Path | None = None
) -> MetricsFile:
    """A metrics file of the real schema; with ``out``, its variants' model files, figures
    and latency samples are written there and recorded (see ``add_results``)."""
    provenance = Provenance(
        harness_version="0",
        framework_versions={},
        python="3",
        platform="linux",
        hostname="host",
        runtime="local (fake)",
        cpu_model=os.environ.get("FAKE_RUNNER_CPU", "cpu"),
        cpu_flags=[],
        cpu_count=2,
        threads=2,
        device="cpu",
    )
    dataset = DatasetInfo(path="/data", kind="synthetic", train_images=1, test_images=1, digest="0")
    variants = {
        v: VariantMetrics(variant=v, status="ok", precision="fp32" if v == "baseline" else "int8")
        for v in VARIANTS
    }
    metrics = MetricsFile(
        framework=framework,
        status=status,  # type: ignore[arg-type]
        run_id=run_id,
        spec_name="smoke",
        spec_digest="0",
        seed=0,
        started_at=now_iso(),
        updated_at=now_iso(),
        provenance=provenance,
        dataset=dataset,
        variants=variants,
    )
    if out is not None:
        add_results(metrics, out)
    return metrics


def add_results(metrics: MetricsFile, out: Path) -> None:
    """Deterministic model files (their bytes depend on framework, variant and seed, plus
    $FAKE_RUNNER_SALT) with digests, and latency samples that vary from run to run."""
    salt = os.environ.get("FAKE_RUNNER_SALT", "")
    rng = np.random.default_rng(zlib.crc32(f"{metrics.run_id}/{metrics.framework}".encode()))
    (out / "artifacts").mkdir(parents=True, exist_ok=True)
    for name, variant in metrics.variants.items():
        if variant.status != "ok":
            continue
        rel = f"artifacts/{name}.bin"
        data = f"{metrics.framework} {name} seed {metrics.seed}\n".encode() * 64
        if salt:  # other bytes, same size (as a rerun on another CPU gives)
            data = bytes(b ^ s for b, s in zip(data, itertools.cycle(salt.encode()), strict=False))
        (out / rel).write_bytes(data)
        variant.artifacts = artifact_digests([out / rel], out)
        variant.size = SizeStats(bytes=len(data), format="fake", parameters=1, file=rel)
        agreement = None if name == "baseline" else 0.9
        variant.accuracy = AccuracyStats(
            top1=0.5, n=10, device="cpu", agreement_with_fp32=agreement
        )
        samples = rng.lognormal(0.0, 0.1, 200)
        samples_file = f"artifacts/latency-{name}-b1.npy"
        np.save(out / samples_file, samples)
        variant.latency = [_latency(samples, samples_file)]


def _latency(samples: np.ndarray, samples_file: str) -> LatencyStats:
    p50, p90, p99 = (float(np.percentile(samples, q)) for q in (50, 90, 99))
    return LatencyStats(
        batch_size=1, device="cpu", threads=2, n=samples.size, total_s=float(samples.sum()) / 1e3,
        mean_ms=float(samples.mean()), std_ms=float(samples.std()), min_ms=float(samples.min()),
        p50_ms=p50, p90_ms=p90, p99_ms=p99, max_ms=float(samples.max()),
        stop_reason="min_count_and_duration", samples_file=samples_file,
    )  # fmt: skip


def mode_for(framework: str) -> str:
    setting = os.environ.get("FAKE_RUNNER", "complete")
    if "=" not in setting:
        return setting
    modes = dict(part.split("=", 1) for part in setting.split(","))
    return modes.get(framework, "complete")


MODULE = "tests.fake_runner"
# Runs the CLI with every framework served by this module (for tests that need a real
# process to send signals to).
CLI_DRIVER = (
    "import sys\n"
    "from dataclasses import replace\n"
    "from harness_contract.frameworks import FRAMEWORKS\n"
    "for name in list(FRAMEWORKS):\n"
    f"    FRAMEWORKS[name] = replace(FRAMEWORKS[name], runner_module={MODULE!r})\n"
    "from harness.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def use_fake_runners(monkeypatch) -> None:  # noqa: ANN001 (pytest's MonkeyPatch)
    """Serve every framework with this module, in this process (main() called directly)."""
    from dataclasses import replace

    from harness_contract.frameworks import FRAMEWORKS

    for name in list(FRAMEWORKS):
        monkeypatch.setitem(FRAMEWORKS, name, replace(FRAMEWORKS[name], runner_module=MODULE))
    root = str(Path(__file__).resolve().parent.parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))


def main() -> int:
    args = parse_args(sys.argv[1:], "fake_runner")
    out: Path = args.out
    framework = out.name
    mode = mode_for(framework)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    lock = out.parent / ".lock"
    print(f"fake runner {framework}: {mode}, pid {os.getpid()}", flush=True)
    print(f"LOCK {lock.read_text().strip() if lock.exists() else 'none'}", flush=True)
    if mode == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    metrics = metrics_for(framework, args.run_id, "running")
    write_metrics(path, metrics)
    events.emit("start", framework=framework, device="cpu", threads=1)
    if mode == "crash":
        print("fatal: simulated crash", flush=True)
        return 1
    marker = Path(os.environ.get("FAKE_RUNNER_MARKER", out / "crashed-once"))
    if mode == "crash_once" and not marker.exists():  # the first attempt only, wherever it ran
        marker.write_text("crashed\n")
        print("fatal: simulated crash on the first attempt", flush=True)
        return 1
    if mode == "killed_mid_phase":  # as the OOM killer ends a runner: mid-phase, mid-warning
        events.emit("phase", phase="baseline", state="start")
        events.emit("phase", phase="baseline", state="done", accuracy=0.5)
        events.emit("phase", phase="ptq", state="start")
        print("FutureWarning: the old API is deprecated\n  return cls.__new__(cls, *args)")
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if mode in ("sleep", "stubborn"):
        if mode == "stubborn":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("READY", flush=True)
        try:
            time.sleep(float(os.environ.get("FAKE_RUNNER_SLEEP_S", "120")))
        except KeyboardInterrupt:
            metrics.status = "interrupted"
            write_metrics(path, metrics)
            return 130
    if mode == "slow":
        print("READY", flush=True)
        time.sleep(float(os.environ.get("FAKE_RUNNER_SLOW_S", "3")))
    if mode == "phase_failed":
        metrics.variants["ptq"].status = "failed"
        metrics.variants["ptq"].reason = "out of memory while calibrating"
    add_results(metrics, out)
    metrics.status = "complete"
    write_metrics(path, metrics)
    return 0


def _term(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _term)
    sys.exit(main())
