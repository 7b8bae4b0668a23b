"""scripts/gpu-check.py: on a machine without a GPU it says "no GPU: skipped" and exits 0;
a driver without a CUDA PyTorch is a setup error naming the fix; and its summary reads
the figures the issue asks for from a metrics.json of the real schema."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from harness_contract.metrics.figures import OpTime, ProfileStats, TrainingStats
from harness_contract.study.energy import energy_stats
from tests.fake_runner import metrics_for

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu-check.py"


def _cuda_here() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(tmp_path: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--work", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        env={"PATH": str(path), "HOME": str(tmp_path)},
        timeout=300,
    )


@pytest.mark.skipif(_cuda_here(), reason="a CUDA GPU is here: the script would run it all")
def test_without_a_gpu_it_says_skipped_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()  # no nvidia-smi on PATH
    done = _run(tmp_path, tmp_path / "bin")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("gpu-check: no GPU: skipped (nvidia-smi is not installed; ")
    assert "nothing ran" in lines[1]
    assert not (tmp_path / "work").exists()  # nothing set up, nothing run


@pytest.mark.skipif(_cuda_here(), reason="a CUDA GPU is here: the script would run it all")
def test_a_driver_without_a_cuda_pytorch_is_a_setup_error_naming_the_fix(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-1)'\n")
    smi.chmod(0o755)
    done = _run(tmp_path, bin_dir)
    assert done.returncode == 2
    assert done.stdout.startswith("error: nvidia-smi lists 1 GPU(s) but ")
    assert "pass --python with the interpreter whose torch has CUDA" in done.stdout


def test_the_summary_gives_throughput_latency_energy_and_the_device_breakdown() -> None:
    m = metrics_for("pytorch", "r")  # fp32 on the GPU, int8 on the CPU, as on a GPU host
    m.provenance.device = "cuda:0 (NVIDIA H200)"
    base, ptq = m.variants["baseline"], m.variants["ptq"]
    base.training = TrainingStats(
        device="cuda:0", threads=16, epochs=3, wall_s=6.0, images=3000, images_per_s=500.0
    )
    e = energy_stats(1.5, 0.5, calls=100, batch_size=1, source="nvml energy counter", gpu="g")
    base.latency = [_latency(0.8, "cuda:0", energy=e)]
    ptq.latency = [_latency(2.0, "cpu")]
    base.profiles = [
        ProfileStats(
            kind="inference",
            status="ok",
            tool="torch.profiler",
            device="cuda:0",
            threads=16,
            batch_size=32,
            steps=3,
            trace="traces/baseline-inference.pt.trace.json",
            total_us={"gpu": 4000.0, "cpu": 9000.0},
            breakdown=[
                OpTime(category="convolution", device="gpu", time_us=3000.0, share=0.75),
                OpTime(category="elementwise", device="gpu", time_us=1000.0, share=0.25),
                OpTime(category="other", device="cpu", time_us=9000.0, share=1.0),
            ],
        )
    ]
    lines = _script().summary_lines(json.loads(m.model_dump_json()))
    text = "\n".join(lines)
    assert "train baseline: 500 images/s on cuda:0 (3 epoch(s), 6.0 s)" in text
    assert "latency baseline (fp32) batch 1: p50 0.800 ms" in text
    assert "15.000 mJ/image, 15.00 mJ/call, 3 W mean (nvml energy counter)" in text
    assert "latency ptq (int8) batch 1: p50 2.000 ms" in text
    assert "fp32 ran on cuda:0: not a like-for-like ratio" in text  # never a cross-device x
    assert "energy not measured: not recorded" in text
    assert "gpu 4.0 ms: convolution 75%, elementwise 25%; cpu 9.0 ms: other 100%" in text


def _latency(p50: float, device: str, energy=None):  # noqa: ANN001, ANN202
    from harness_contract.metrics.figures import LatencyStats

    return LatencyStats(
        batch_size=1, device=device, threads=16, n=100, total_s=0.5, mean_ms=p50,
        std_ms=0.01, min_ms=p50, p50_ms=p50, p90_ms=p50 * 1.1, p99_ms=p50 * 1.2,
        max_ms=p50 * 2, stop_reason="min_count_and_duration", energy=energy,
    )  # fmt: skip
