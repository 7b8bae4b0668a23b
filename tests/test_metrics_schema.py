"""The versioned metrics.json schema: atomic writes and strict reads (harness_contract.metrics)."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from harness_contract.errors import MetricsError
from harness_contract.fs import atomic
from harness_contract.metrics import (
    SCHEMA_VERSION,
    DatasetInfo,
    MetricsFile,
    Provenance,
    VariantMetrics,
    json_schema,
    read_metrics,
    write_metrics,
)
from harness_contract.metrics.figures import (
    AccuracyStats,
    ConversionStats,
    LatencyStats,
    MemoryStats,
    SizeStats,
    TrainingStats,
)

STALE_STAMP = "2000-01-01T00:00:00+00:00"


def _latency(batch_size: int, p50: float) -> LatencyStats:
    return LatencyStats(
        batch_size=batch_size,
        device="cpu",
        threads=4,
        n=200,
        total_s=5.2,
        mean_ms=p50 * 1.02,
        std_ms=p50 * 0.05,
        min_ms=p50 * 0.9,
        p50_ms=p50,
        p90_ms=p50 * 1.1,
        p99_ms=p50 * 1.3,
        max_ms=p50 * 1.6,
        stop_reason="min_count_and_duration",
        samples_file=f"latency/baseline_bs{batch_size}.npy",
    )


def _metrics(framework: str = "pytorch", notes: int = 0) -> MetricsFile:
    baseline = VariantMetrics(
        variant="baseline",
        status="ok",
        precision="fp32",
        accuracy=AccuracyStats(top1=0.912, n=10000, device="cuda:0"),
        training=TrainingStats(
            device="cuda:0 (NVIDIA H100)",
            threads=4,
            epochs=3,
            wall_s=61.5,
            epoch_s=[21.0, 20.2, 20.3],
            images=150000,
            images_per_s=2439.0,
            loss=[1.9, 1.2, 0.9],
            train_accuracy=[0.3, 0.55, 0.68],
        ),
        size=SizeStats(bytes=44_700_000, format="state_dict", parameters=11_169_162),
        latency=[_latency(1, 2.5), _latency(128, 95.0)],
        memory=MemoryStats(peak_rss_bytes=2_100_000_000, peak_gpu_bytes=900_000_000),
        notes=[f"note {i}" for i in range(notes)],
    )
    ptq = VariantMetrics(
        variant="ptq",
        status="ok",
        precision="int8",
        accuracy=AccuracyStats(top1=0.905, n=10000, device="cpu", agreement_with_fp32=0.987),
        conversion=ConversionStats(
            flow="pt2e",
            device="cpu",
            calibration_samples=1024,
            calibration_s=3.1,
            conversion_s=4.2,
            quantized_ops=["onednn::qconv2d_pointwise", "onednn::qlinear_pointwise"],
        ),
        size=SizeStats(bytes=11_300_000, format="state_dict", parameters=11_169_162, file="ptq.pt"),
        latency=[_latency(1, 1.1)],
        memory=MemoryStats(peak_rss_bytes=1_500_000_000),
    )
    qat = VariantMetrics(
        variant="qat", status="skipped", precision="int8", reason="qat.enabled is false"
    )
    return MetricsFile(
        framework=framework,
        status="complete",
        run_id="20261101-120000-paper",
        spec_name="paper",
        spec_digest="0123456789abcdef",
        seed=0,
        started_at="2026-11-01T12:00:00+00:00",
        updated_at=STALE_STAMP,
        provenance=Provenance(
            harness_version="0.1.0",
            framework_versions={"torch": "2.13.0", "torchao": "0.18.0"},
            python="3.12.3",
            platform="Linux-6.8-x86_64",
            hostname="bench-1",
            runtime="local (/work/main/.venv/bin/python)",
            cpu_model="Intel(R) Xeon(R) Platinum 8480+",
            cpu_flags=["avx2", "avx512f", "avx512_vnni", "amx_int8"],
            cpu_count=16,
            threads=4,
            device="cuda:0 (NVIDIA H100)",
            gpu="NVIDIA H100 80GB HBM3",
            cuda="12.8",
            cudnn="9.10",
        ),
        dataset=DatasetInfo(
            path="../shared/data/cifar10",
            kind="real",
            train_images=50000,
            test_images=10000,
            digest="ab" * 32,
        ),
        variants={"baseline": baseline, "ptq": ptq, "qat": qat},
    )


def _write_raw(path: Path, raw: object) -> Path:
    path.write_text(json.dumps(raw))
    return path


def _valid_raw(tmp_path: Path) -> dict:
    path = tmp_path / "source.json"
    write_metrics(path, _metrics())
    raw = json.loads(path.read_text())
    path.unlink()
    return raw


def _read_error(path: Path) -> str:
    with pytest.raises(MetricsError) as info:
        read_metrics(path)
    return info.value.one_line()


# ---------------------------------------------------------------- round trip


def test_realistic_metrics_round_trip_through_write_and_read(tmp_path: Path) -> None:
    original = _metrics()
    path = tmp_path / "pytorch" / "metrics.json"  # parent is created
    write_metrics(path, original)
    loaded = read_metrics(path)
    assert loaded == original
    assert loaded.model_dump() == original.model_dump()
    assert loaded.variant("ptq").conversion.quantized_ops == [
        "onednn::qconv2d_pointwise",
        "onednn::qlinear_pointwise",
    ]
    assert loaded.variant("qat").reason == "qat.enabled is false"
    assert loaded.variant("missing") is None


def test_write_stamps_updated_at_with_the_current_time(tmp_path: Path) -> None:
    metrics = _metrics()
    write_metrics(tmp_path / "metrics.json", metrics)
    stamped = read_metrics(tmp_path / "metrics.json").updated_at
    assert stamped != STALE_STAMP
    assert datetime.fromisoformat(stamped).year >= 2024
    assert datetime.fromisoformat(stamped).utcoffset() is not None


def test_written_file_carries_the_schema_version(tmp_path: Path) -> None:
    write_metrics(tmp_path / "metrics.json", _metrics())
    assert json.loads((tmp_path / "metrics.json").read_text())["schema_version"] == SCHEMA_VERSION


# ---------------------------------------------------------------- atomic writes


def test_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    write_metrics(tmp_path / "metrics.json", _metrics())
    write_metrics(tmp_path / "metrics.json", _metrics())
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_rewrite_replaces_a_longer_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_metrics(path, _metrics(notes=2000))
    long_size = path.stat().st_size
    write_metrics(path, _metrics(framework="tensorflow"))
    assert path.stat().st_size < long_size
    loaded = read_metrics(path)  # would fail on any leftover tail of the longer file
    assert loaded.framework == "tensorflow"
    assert loaded.variant("baseline").notes == []


def test_invalid_metrics_are_refused_and_the_completed_file_survives(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_metrics(path, _metrics())
    before = path.read_bytes()
    broken = _metrics()
    broken.variants["baseline"].latency[0].n = 0  # no validation on assignment
    with pytest.raises(MetricsError) as info:
        write_metrics(path, broken)
    assert str(path) in info.value.one_line()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_interrupted_write_keeps_the_old_file_and_removes_its_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metrics.json"
    write_metrics(path, _metrics())
    before = path.read_bytes()

    def fail_replace(src: str, dst: str) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr(atomic.os, "replace", fail_replace)
    with pytest.raises(OSError, match="disk went away"):
        write_metrics(path, _metrics(framework="tensorflow"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


# ---------------------------------------------------------------- strict reads


def test_missing_file_is_rejected_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "metrics.json"
    line = _read_error(path)
    assert str(path) in line
    assert "does not exist" in line


def test_invalid_json_is_rejected_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text('{"schema_version": 1, "framework": ')
    line = _read_error(path)
    assert str(path) in line
    assert "not valid JSON" in line
    assert "\n" not in line


def test_non_object_json_is_rejected(tmp_path: Path) -> None:
    line = _read_error(_write_raw(tmp_path / "metrics.json", [1, 2, 3]))
    assert "schema_version" in line


@pytest.mark.parametrize("version", [4, 0, "1", None])
def test_wrong_schema_version_is_rejected_naming_both_versions(
    tmp_path: Path, version: object
) -> None:
    raw = _valid_raw(tmp_path)
    raw["schema_version"] = version
    line = _read_error(_write_raw(tmp_path / "metrics.json", raw))
    assert f"schema_version {version!r}" in line
    assert "reads 1, 2, 3" in line


def test_a_schema_1_file_still_loads_without_the_schema_2_fields(tmp_path: Path) -> None:
    raw = _valid_raw(tmp_path)
    raw["schema_version"] = 1  # as a schema-1 writer left it: none of the newer fields
    for key in ("image", "determinism"):
        del raw["provenance"][key]
    for variant in raw["variants"].values():
        del variant["artifacts"]
    metrics = read_metrics(_write_raw(tmp_path / "metrics.json", raw))
    assert metrics.schema_version == 1
    assert metrics.provenance.image is None and metrics.provenance.determinism == {}
    assert all(v.artifacts == [] for v in metrics.variants.values())


def test_missing_schema_version_is_rejected(tmp_path: Path) -> None:
    raw = _valid_raw(tmp_path)
    del raw["schema_version"]
    assert "schema_version None" in _read_error(_write_raw(tmp_path / "metrics.json", raw))


def test_missing_required_field_is_rejected_naming_it(tmp_path: Path) -> None:
    raw = _valid_raw(tmp_path)
    del raw["run_id"]
    line = _read_error(_write_raw(tmp_path / "metrics.json", raw))
    assert "'run_id'" in line
    assert "metrics schema" in line


def test_missing_nested_field_is_rejected_naming_its_full_path(tmp_path: Path) -> None:
    raw = _valid_raw(tmp_path)
    del raw["variants"]["baseline"]["latency"][1]["p90_ms"]
    line = _read_error(_write_raw(tmp_path / "metrics.json", raw))
    assert "'variants.baseline.latency.1.p90_ms'" in line


def test_unknown_extra_field_is_rejected_naming_it(tmp_path: Path) -> None:
    raw = _valid_raw(tmp_path)
    raw["accuracy_top5"] = 0.99
    line = _read_error(_write_raw(tmp_path / "metrics.json", raw))
    assert "'accuracy_top5'" in line


def test_unknown_nested_field_is_rejected_naming_it(tmp_path: Path) -> None:
    raw = _valid_raw(tmp_path)
    raw["provenance"]["gpu_fan_speed"] = "40%"
    assert "'provenance.gpu_fan_speed'" in _read_error(_write_raw(tmp_path / "metrics.json", raw))


def test_out_of_range_value_is_rejected_naming_it(tmp_path: Path) -> None:
    raw = _valid_raw(tmp_path)
    raw["variants"]["ptq"]["accuracy"]["top1"] = 91.2  # a percentage, not a fraction
    line = _read_error(_write_raw(tmp_path / "metrics.json", raw))
    assert "'variants.ptq.accuracy.top1'" in line


# ---------------------------------------------------------------- schema and helpers


def test_json_schema_lists_the_top_level_fields() -> None:
    schema = json_schema()
    assert isinstance(schema, dict)
    assert set(schema["properties"]) == set(MetricsFile.model_fields)
    assert {
        "schema_version",
        "framework",
        "status",
        "run_id",
        "spec_digest",
        "provenance",
        "dataset",
        "variants",
    } <= set(schema["properties"])
    assert {"framework", "provenance", "dataset", "run_id"} <= set(schema["required"])
    json.dumps(schema)  # serializable as-is for `harness schema`


def test_latency_at_finds_the_measurement_for_a_batch_size() -> None:
    baseline = _metrics().variant("baseline")
    assert baseline.latency_at(128).p50_ms == 95.0
    assert baseline.latency_at(1).p50_ms == 2.5
    assert baseline.latency_at(64) is None
    assert _metrics().variant("qat").latency_at(1) is None


def test_per_sample_latency_divides_by_the_batch_size() -> None:
    lat = _metrics().variant("baseline").latency_at(128)
    assert lat.p50_per_sample_ms == pytest.approx(95.0 / 128)
    assert lat.p90_per_sample_ms == pytest.approx(95.0 * 1.1 / 128)


def test_atomic_writes_are_readable_by_other_users(tmp_path: Path) -> None:
    # A container's non-root user must read the data and metrics the host wrote.
    from harness_contract.fs.atomic import write_text_atomic

    target = tmp_path / "shared.txt"
    old = os.umask(0o022)
    try:
        write_text_atomic(target, "x")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644
