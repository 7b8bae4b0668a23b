"""Values the spec refuses before any work starts: non-finite floats, sizes and thread
counts that would hurt the machine, and counts larger than the training images."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness_contract.errors import SpecError
from harness_contract.spec import (
    MAX_LATENCY_BATCH,
    MAX_THREADS,
    build_spec,
    check_training_images,
)


def _refused(*overrides: str, preset: str = "smoke") -> str:
    with pytest.raises(SpecError) as info:
        build_spec(preset, None, list(overrides))
    line = info.value.one_line()
    assert "\n" not in line
    return line


# ---------------------------------------------------------------- finite floats


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("train.lr=nan", "train.lr"),
        ("train.warmup_epochs=inf", "train.warmup_epochs"),
        ("train.warmup_epochs=NaN", "train.warmup_epochs"),
        ("qat.grad_clip_norm=Infinity", "qat.grad_clip_norm"),
        ("train.grad_clip_norm=inf", "train.grad_clip_norm"),
        ("measure.latency.max_seconds=inf", "measure.latency.max_seconds"),
        ("measure.latency.warmup_seconds=inf", "measure.latency.warmup_seconds"),
        ("measure.latency.min_seconds=nan", "measure.latency.min_seconds"),
        ("data.mean=[0.5,NaN,0.5]", "data.mean.1"),
        ("data.std=[0.2,0.2,Infinity]", "data.std.2"),
        ("model.width_multiplier=nan", "model.width_multiplier"),
        ("train.momentum=-inf", "train.momentum"),
    ],
)
def test_non_finite_float_is_refused_naming_the_field(override: str, field: str) -> None:
    line = _refused(override)
    assert f"'{field}'" in line and "finite" in line, line


def test_non_finite_float_in_a_toml_spec_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[train]\nwarmup_epochs = inf\n")
    with pytest.raises(SpecError) as info:
        build_spec("smoke", path)
    assert "'train.warmup_epochs'" in info.value.one_line()


def test_finite_floats_still_load() -> None:
    spec = build_spec("smoke", None, ["train.warmup_epochs=2.5", "train.grad_clip_norm=1e3"])
    assert spec.train.warmup_epochs == 2.5 and spec.train.grad_clip_norm == 1000.0


# ---------------------------------------------------------------- machine-protecting bounds


def test_latency_batch_size_above_the_maximum_is_refused_naming_it() -> None:
    line = _refused(f"measure.latency.batch_sizes=[1,{MAX_LATENCY_BATCH + 1}]")
    assert "measure.latency.batch_sizes" in line and str(MAX_LATENCY_BATCH) in line


def test_latency_batch_size_at_the_maximum_is_accepted() -> None:
    spec = build_spec("smoke", None, [f"measure.latency.batch_sizes=[{MAX_LATENCY_BATCH}]"])
    assert spec.measure.latency.batch_sizes == [MAX_LATENCY_BATCH]


@pytest.mark.parametrize(
    "override",
    [
        "measure.eval_batch_size=1000000",
        "ptq.calibration_batch_size=1000000",
        "measure.latency.max_count=1000000000000",
        "measure.latency.warmup_count=1000000000000",
    ],
)
def test_huge_counts_and_batch_sizes_are_refused_naming_the_field(override: str) -> None:
    assert f"'{override.split('=')[0]}'" in _refused(override)


def test_thread_count_above_the_maximum_is_refused() -> None:
    line = _refused(f"measure.threads={MAX_THREADS + 1}")
    assert "'measure.threads'" in line and str(MAX_THREADS) in line


@pytest.mark.parametrize("value", ["0", "-2"])
def test_thread_count_below_one_is_refused(value: str) -> None:
    assert "'measure.threads'" in _refused(f"measure.threads={value}")


# ---------------------------------------------------------------- counts vs training images


def test_calibration_larger_than_train_limit_is_refused_naming_both() -> None:
    line = _refused("data.train_limit=100", "ptq.calibration_samples=128")
    assert "ptq.calibration_samples=128" in line and "100" in line
    assert "data.train_limit" in line


def test_calibration_beyond_train_limit_is_fine_when_ptq_is_off() -> None:
    spec = build_spec(
        "smoke", None, ["data.train_limit=100", "ptq.calibration_samples=128", "ptq.enabled=false"]
    )
    assert spec.ptq.calibration_samples == 128


def test_training_batch_larger_than_train_limit_is_refused_naming_both() -> None:
    line = _refused("data.train_limit=50", "ptq.calibration_samples=10")
    assert "train.batch_size=64" in line and "50" in line


def test_qat_batch_larger_than_train_limit_is_refused() -> None:
    line = _refused("data.train_limit=100", "ptq.calibration_samples=10", "qat.batch_size=128")
    assert "qat.batch_size=128" in line


def test_batch_size_beyond_train_limit_is_fine_without_training_epochs() -> None:
    spec = build_spec(
        "smoke",
        None,
        ["data.train_limit=50", "ptq.calibration_samples=10", "train.epochs=0", "qat.epochs=0"],
    )
    assert spec.train.batch_size == 64


def test_check_training_images_names_the_source_of_the_count() -> None:
    spec = build_spec("smoke")  # 128 calibration images, batch 64
    with pytest.raises(SpecError) as info:
        check_training_images(spec, 100, "in /data/cifar-10-batches-py")
    line = info.value.one_line()
    assert "ptq.calibration_samples=128" in line
    assert "100 training images in /data/cifar-10-batches-py" in line


def test_check_training_images_accepts_enough_images() -> None:
    check_training_images(build_spec("smoke"), 128, "in the dataset")
