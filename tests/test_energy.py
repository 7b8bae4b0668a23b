"""Energy beside latency (harness_contract.study.energy): the arithmetic, the absent-with-
its-reason path every CPU run takes, the NVML reader, and the report's latency table.

The real NVML reader is checked on a GPU in tests/test_gpu.py; here a small fake of the
pynvml functions it calls stands in, only because no NVML exists on these machines."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.report import write_report
from harness_contract.metrics import write_metrics
from harness_contract.metrics.figures import EnergyStats
from harness_contract.spec import LatencySpec
from harness_contract.study import energy
from harness_contract.study.energy import (
    NO_PYNVML,
    NotMeasured,
    NvmlMeter,
    cpu_reason,
    energy_stats,
    gpu_index,
    mean_power,
    meter_for,
    nvml_target,
)
from harness_contract.study.latency import measure_latency
from tests.fake_runner import metrics_for

RULE = LatencySpec(warmup_count=0, warmup_seconds=0.0, min_count=5, min_seconds=0.0, max_count=1000)


# ---------------------------------------------------------------- arithmetic


def test_joules_per_call_and_per_image_follow_from_the_windows_total() -> None:
    stats = energy_stats(12.0, 3.0, calls=100, batch_size=32, source="s", gpu="g")
    assert stats.status == "measured"
    assert stats.per_call_j == pytest.approx(0.12)
    assert stats.per_image_j == pytest.approx(0.12 / 32)
    assert stats.mean_power_w == pytest.approx(4.0)


def test_mean_power_weighs_readings_by_the_time_they_cover() -> None:
    # 100 W for 1 s, then 300 W for 3 s (trapezoids between unevenly spaced readings).
    readings = [(0.0, 100.0), (1.0, 100.0), (1.0, 300.0), (4.0, 300.0)]
    assert mean_power(readings) == pytest.approx((100 * 1 + 300 * 3) / 4)
    assert mean_power([(2.0, 50.0), (2.0, 70.0)]) == pytest.approx(60.0)  # no span


# ---------------------------------------------------------------- CPU: absent, with why


def test_a_cpu_row_is_not_measured_and_says_why() -> None:
    run = measure_latency(lambda: None, RULE, batch_size=1, device="cpu", threads=2)
    e = run.stats.energy
    assert e is not None and e.status == "not measured"
    assert e.reason is not None and e.reason.startswith("no NVML (CPU run; ")
    assert e.per_call_j is None and e.total_j is None


def test_the_cpu_reason_says_whether_rapl_counters_exist(tmp_path: Path) -> None:
    assert cpu_reason(tmp_path / "absent") == "no NVML (CPU run; no RAPL counters here)"
    (tmp_path / "powercap" / "intel-rapl:0").mkdir(parents=True)
    assert "RAPL counters exist here but are not read" in cpu_reason(tmp_path / "powercap")


@pytest.mark.parametrize(
    ("device", "index"),
    [("cpu", None), ("cuda", 0), ("cuda:0", 0), ("cuda:3", 3), ("/GPU:1", 1), ("mps", None)],
)
def test_the_gpu_index_is_read_from_the_device_string(device: str, index: int | None) -> None:
    assert gpu_index(device) == index


def test_cuda_visible_devices_maps_cuda_indices_to_nvml_ones() -> None:
    assert nvml_target(0, {}) == 0
    assert nvml_target(1, {"CUDA_VISIBLE_DEVICES": "3,1"}) == 1
    assert nvml_target(0, {"CUDA_VISIBLE_DEVICES": "3,1"}) == 3
    assert nvml_target(0, {"CUDA_VISIBLE_DEVICES": "GPU-abc"}) == "GPU-abc"
    with pytest.raises(IndexError):
        nvml_target(2, {"CUDA_VISIBLE_DEVICES": "0"})


def test_a_gpu_row_without_pynvml_is_not_measured_naming_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(energy, "_NVML", None)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    meter = meter_for("cuda:0")
    assert meter == NotMeasured(NO_PYNVML)
    assert "nvidia-ml-py" in NO_PYNVML


# ---------------------------------------------------------------- the NVML reader


class FakeNvml:
    """The pynvml functions the reader calls, over one simulated board: its energy
    counter (mJ) advances by ``counter_step`` per read; ``power_mw`` is its power reading.
    ``counter_step=None``: a board without the counter (pynvml raises NotSupported)."""

    class NVMLError(Exception):
        pass

    def __init__(self, counter_step: int | None = 5_000, power_mw: int = 250_000) -> None:
        self.counter_step, self.power_mw = counter_step, power_mw
        self.counter_mj = 1_000_000
        self.opened: list[object] = []

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:  # noqa: N802 (pynvml's names)
        self.opened.append(index)
        return f"handle-{index}"

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:  # noqa: N802
        self.opened.append(uuid)
        return f"handle-{uuid}"

    def nvmlDeviceGetName(self, handle: str) -> bytes:  # noqa: N802
        return b"NVIDIA H200"  # older pynvml releases return bytes

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:  # noqa: N802
        if self.counter_step is None:
            raise self.NVMLError("Not Supported")
        self.counter_mj += self.counter_step
        return self.counter_mj

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:  # noqa: N802
        return self.power_mw


def test_the_energy_counter_is_read_at_both_ends_of_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nvml = FakeNvml(counter_step=6_000)  # 6 J between the two reads
    meter = meter_for("cuda:0", nvml)
    assert isinstance(meter, NvmlMeter) and meter.gpu == "NVIDIA H200 (nvml 0)"
    run = measure_latency(lambda: None, RULE, batch_size=8, device="cuda:0", threads=2, meter=meter)
    e = run.stats.energy
    assert e is not None and e.status == "measured" and e.source == "nvml energy counter"
    assert e.total_j == pytest.approx(6.0)
    assert e.per_call_j == pytest.approx(6.0 / run.stats.n)
    assert e.per_image_j == pytest.approx(6.0 / run.stats.n / 8)
    assert e.power_samples is None  # no thread ran beside the timed calls


def test_a_board_without_the_counter_is_sampled_and_integrated() -> None:
    meter = NvmlMeter(FakeNvml(counter_step=None, power_mw=250_000), "h", "g", interval_s=0.01)
    meter.start()
    time.sleep(0.15)
    e = meter.stop(calls=30, batch_size=1)
    assert e.status == "measured" and e.source == "nvml power samples"
    assert e.power_samples is not None and e.power_samples >= 2
    assert e.interval_ms == pytest.approx(10.0)
    assert e.mean_power_w == pytest.approx(250.0)
    assert e.total_j == pytest.approx(250.0 * e.window_s)


def test_a_counter_that_did_not_move_is_not_measured_rather_than_zero() -> None:
    meter = NvmlMeter(FakeNvml(counter_step=0), "h", "g")
    meter.start()
    e = meter.stop(calls=3, batch_size=1)
    assert e.status == "not measured" and e.total_j is None
    assert "too short for NVML" in (e.reason or "")


def test_cuda_visible_devices_decides_which_board_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nvml = FakeNvml()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert meter_for("cuda:0", nvml).gpu == "NVIDIA H200 (nvml 2)"
    assert meter_for("cuda:5", nvml) == NotMeasured(
        "cuda:5 is not among CUDA_VISIBLE_DEVICES, so NVML cannot name it"
    )
    assert nvml.opened == [2]


# ---------------------------------------------------------------- the report


def _run_dir(tmp_path: Path, measured: bool) -> Path:
    """A PyTorch run as a GPU machine leaves it: fp32 latency on cuda:0 (energy measured
    or not), int8 on the CPU (energy not measured, with the CPU's reason)."""
    run = tmp_path / "run"
    out = run / "pytorch"
    out.mkdir(parents=True)
    m = metrics_for("pytorch", "r", out=out)
    for name, v in m.variants.items():
        if name == "baseline" and measured:
            e = energy_stats(2.4, 1.2, calls=200, batch_size=1, source="nvml energy counter",
                             gpu="NVIDIA H200 (nvml 0)")  # fmt: skip
            v.latency = [lat.model_copy(update={"device": "cuda:0", "energy": e})
                         for lat in v.latency]  # fmt: skip
        else:
            reason = "no NVML (CPU run; no RAPL counters here)"
            e = EnergyStats(status="not measured", reason=reason)
            v.latency = [lat.model_copy(update={"energy": e}) for lat in v.latency]
    write_metrics(out / "metrics.json", m)
    (run / "spec.json").write_text("{}")
    return run


def test_measured_energy_gets_columns_and_unmeasured_rows_say_why(tmp_path: Path) -> None:
    paths = write_report(_run_dir(tmp_path, measured=True))
    md = paths.md.read_text()
    table = md[md.index("## Latency") : md.index("## Latency by batch size")]
    assert "Energy per call (mJ) | Energy per image (mJ) | Board power, mean (W)" in table
    assert "| 12.00 | 12.000 | 2.0 |" in table  # 2.4 J / 200 calls; 2.4 J / 1.2 s
    assert "read through NVML on the device in the row (nvml energy counter)" in table
    assert (
        "Energy: not measured for pytorch ptq, pytorch qat (on cpu): "
        "no NVML (CPU run; no RAPL counters here)." in table
    )
    csv = pd.read_csv(paths.csv).set_index("variant")
    assert csv.loc["baseline", "latency_b1_energy_per_image_mj"] == pytest.approx(12.0)
    assert csv.loc["baseline", "latency_b1_mean_power_w"] == pytest.approx(2.0)
    assert pd.isna(csv.loc["ptq", "latency_b1_energy_per_image_mj"])


def test_a_cpu_run_has_no_energy_columns_but_says_energy_was_not_measured(
    tmp_path: Path,
) -> None:
    paths = write_report(_run_dir(tmp_path, measured=False))
    md = paths.md.read_text()
    assert "Energy per call" not in md
    assert (
        "Energy: not measured for pytorch baseline, pytorch ptq, pytorch qat (on cpu): "
        "no NVML (CPU run; no RAPL counters here)." in md
    )
    assert not any("energy" in c for c in pd.read_csv(paths.csv).columns)
