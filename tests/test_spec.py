"""The experiment spec: presets, files, overrides, validation, digest (harness_contract.spec)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness_contract.errors import SpecError
from harness_contract.spec import (
    ExperimentSpec,
    build_spec,
    effective_threads,
    load_resolved_spec,
)
from harness_contract.spec.sources import PRESETS


def _spec_error(*overrides: str, preset: str = "smoke") -> SpecError:
    with pytest.raises(SpecError) as info:
        build_spec(preset, None, list(overrides))
    return info.value


def _leaves(tree: dict, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _leaves(value, f"{path}.")
        else:
            out.add(path)
    return out


# ---------------------------------------------------------------- presets


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_and_validates_under_its_own_name(name: str) -> None:
    spec = build_spec(name)
    assert isinstance(spec, ExperimentSpec)
    assert spec.name == name


def test_paper_preset_carries_the_studys_protocol() -> None:
    spec = build_spec("paper")
    assert spec.model.arch == "resnet18"
    assert spec.model.variant == "nobn"
    assert spec.model.width_multiplier == 1.0
    assert spec.model.zero_init_residual is True
    assert spec.data.train_limit is None and spec.data.test_limit is None
    assert spec.data.augment.crop_padding == 4
    assert spec.data.augment.hflip is True
    assert spec.train.epochs == 50
    assert spec.train.lr == 0.1
    assert spec.train.batch_size == 128
    assert spec.train.milestones == [25, 40]
    assert spec.train.gamma == 0.1
    assert spec.ptq.enabled is True
    assert spec.qat.enabled is True
    assert spec.qat.epochs == 5
    assert spec.qat.lr == pytest.approx(0.001)
    assert spec.qat.milestones == []
    assert spec.measure.latency.batch_sizes == [1, 8, 32, 128]
    assert spec.measure.latency.min_count == 200
    assert spec.measure.latency.min_seconds == 5.0


def test_smoke_preset_inherits_paper_and_overrides_its_own_fields() -> None:
    paper, smoke = build_spec("paper"), build_spec("smoke")
    # Overridden in smoke.toml.
    assert smoke.model.width_multiplier == 0.25
    assert (smoke.data.train_limit, smoke.data.test_limit) == (1000, 500)
    assert (smoke.train.epochs, smoke.train.batch_size, smoke.train.lr) == (3, 64, 0.05)
    assert smoke.measure.rung_variants == ["ptq"]
    assert smoke.train.milestones == []
    assert smoke.ptq.calibration_samples == 128
    assert (smoke.qat.epochs, smoke.qat.batch_size) == (1, 64)
    assert smoke.measure.latency.min_count == 20
    assert smoke.measure.latency.batch_sizes == [1, 32]
    # Every phase, runtime and the per-layer analysis stay on, at tiny sizes; the probes
    # and the what-if are left to the tests that prove them (smoke.toml says which).
    assert (smoke.analysis.enabled, smoke.analysis.images, smoke.analysis.keep_float) == (
        True,
        64,
        [],
    )
    assert smoke.pytorch.runtimes == ["inductor", "executorch"] and not smoke.support.enabled
    # Inherited from paper.toml through `base`.
    assert smoke.model.variant == paper.model.variant == "nobn"
    assert smoke.data.augment == paper.data.augment
    assert smoke.train.grad_clip_norm == paper.train.grad_clip_norm == 1.0
    assert smoke.train.momentum == paper.train.momentum
    assert smoke.qat.lr == paper.qat.lr
    assert smoke.ptq.calibration_batch_size == paper.ptq.calibration_batch_size
    assert smoke.measure.eval_batch_size == paper.measure.eval_batch_size


def test_quick_preset_keeps_the_full_width_network_but_fewer_epochs_and_images() -> None:
    paper, quick = build_spec("paper"), build_spec("quick")
    assert quick.model == paper.model
    assert (quick.data.train_limit, quick.data.test_limit) == (10000, 2000)
    assert quick.train.epochs == 4
    assert quick.train.milestones == [3]
    assert quick.train.warmup_epochs == 0.5
    assert quick.train.lr == paper.train.lr
    assert quick.train.batch_size == paper.train.batch_size
    assert quick.qat.epochs == 1
    assert quick.qat.lr == paper.qat.lr
    assert quick.measure.latency.min_count == 50
    assert quick.measure.latency.batch_sizes == paper.measure.latency.batch_sizes


def test_unknown_preset_is_rejected_with_the_list_of_presets() -> None:
    with pytest.raises(SpecError) as info:
        build_spec("papr")
    line = info.value.one_line()
    assert "papr" in line
    for name in PRESETS:
        assert name in line


# ---------------------------------------------------------------- overrides


def test_integer_override_becomes_an_int() -> None:
    spec = build_spec("paper", None, ["train.epochs=3"])
    assert spec.train.epochs == 3
    assert type(spec.train.epochs) is int


def test_float_overrides_become_floats_including_exponent_and_integer_text() -> None:
    spec = build_spec(
        "paper", None, ["train.lr=0.05", "train.weight_decay=1e-4", "model.width_multiplier=2"]
    )
    assert spec.train.lr == 0.05
    assert spec.train.weight_decay == 1e-4
    assert spec.model.width_multiplier == 2.0
    assert type(spec.model.width_multiplier) is float


def test_list_overrides_become_lists_and_tuples() -> None:
    spec = build_spec(
        "paper",
        None,
        [
            "train.milestones=[2,4]",
            "measure.latency.batch_sizes=[1, 8, 32]",
            "data.mean=[0.5,0.5,0.5]",
        ],
    )
    assert spec.train.milestones == [2, 4]
    assert spec.measure.latency.batch_sizes == [1, 8, 32]
    assert spec.data.mean == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("text", ["false", "False", "FALSE"])
def test_boolean_overrides_accept_any_case(text: str) -> None:
    spec = build_spec("paper", None, [f"ptq.enabled={text}", f"data.augment.hflip={text}"])
    assert spec.ptq.enabled is False
    assert spec.data.augment.hflip is False
    assert build_spec("paper", None, ["model.zero_init_residual=true"]).model.zero_init_residual


@pytest.mark.parametrize("text", ["none", "None", "null"])
def test_none_and_null_overrides_clear_an_optional_field(text: str) -> None:
    spec = build_spec("paper", None, [f"train.grad_clip_norm={text}"])
    assert spec.train.grad_clip_norm is None


def test_plain_string_overrides_are_kept_as_text() -> None:
    spec = build_spec(
        "paper", None, ["model.variant=bn", "device=cpu", "pytorch.quant_flow=fx", "name=my-run"]
    )
    assert spec.model.variant == "bn"
    assert spec.device == "cpu"
    assert spec.pytorch.quant_flow == "fx"
    assert spec.name == "my-run"


def test_numeric_looking_run_name_override_stays_a_string() -> None:
    # BUG: parse_override JSON-decodes "2024" to the int 2024, and the str field `name`
    # rejects an int, so `--set name=2024` fails with "Input should be a valid string".
    spec = build_spec("paper", None, ["name=2024"])
    assert spec.name == "2024"


def test_later_overrides_win_and_other_fields_keep_the_preset_values() -> None:
    spec = build_spec("smoke", None, ["train.epochs=7", "train.epochs=9"])
    assert spec.train.epochs == 9
    assert spec.train.batch_size == 64
    assert spec.qat.epochs == 1


def test_negative_epochs_are_rejected_naming_the_key() -> None:
    err = _spec_error("train.epochs=-1")
    assert "train.epochs" in err.one_line()
    assert "-1" in err.one_line()


def test_fractional_epochs_are_rejected_naming_the_key() -> None:
    assert "train.epochs" in _spec_error("train.epochs=2.5").one_line()


def test_misspelt_key_is_rejected_as_unknown_naming_it() -> None:
    line = _spec_error("train.epoch=3").one_line()
    assert "unknown" in line
    assert "train.epoch" in line


def test_unknown_section_is_rejected_naming_it() -> None:
    line = _spec_error("trian.epochs=3").one_line()
    assert "unknown" in line
    assert "trian" in line


@pytest.mark.parametrize("text", ["train.epochs", "=3", "train..epochs=3", ".epochs=3", ""])
def test_malformed_override_is_rejected_showing_the_expected_form(text: str) -> None:
    line = _spec_error(text).one_line()
    assert f"'{text}'" in line
    assert "section.key=value" in line


def test_override_below_a_plain_field_is_rejected_naming_the_field() -> None:
    line = _spec_error("train.epochs.extra=1").one_line()
    assert "'epochs' is not a section" in line


@pytest.mark.parametrize("milestones", ["[4,2]", "[3,3]", "[-1,2]"])
def test_milestones_must_be_non_negative_and_strictly_increasing(milestones: str) -> None:
    line = _spec_error(f"train.milestones={milestones}").one_line()
    assert "train" in line
    assert "milestones" in line


def test_qat_milestones_are_checked_too() -> None:
    assert "milestones" in _spec_error("qat.milestones=[2,1]").one_line()


def test_unknown_model_variant_is_rejected_naming_the_key_and_the_value() -> None:
    line = _spec_error("model.variant=xx").one_line()
    assert "model.variant" in line
    assert "'xx'" in line


def test_max_count_below_min_count_is_rejected_naming_both() -> None:
    line = _spec_error("measure.latency.min_count=50", "measure.latency.max_count=10").one_line()
    assert "measure.latency" in line
    assert "max_count" in line and "min_count" in line


@pytest.mark.parametrize(
    "override",
    [
        "measure.latency.batch_sizes=[]",
        "measure.latency.batch_sizes=[0,1]",
        "data.std=[0.2,0.0,0.2]",
        "train.lr=0",
        "qat.momentum=1.0",
        "seed=-1",
        "measure.threads=0",
        "data.augment.crop_padding=17",
        "device=tpu",
    ],
)
def test_out_of_range_values_are_rejected_with_a_single_line(override: str) -> None:
    err = _spec_error(override)
    line = err.one_line()
    assert "\n" not in line
    assert override.split("=")[0].rsplit(".", 1)[0] in line


def test_spec_errors_carry_a_fix() -> None:
    err = _spec_error("train.epochs=-1")
    assert err.fix
    assert err.one_line().endswith(err.fix.rstrip("."))


# ---------------------------------------------------------------- spec files


def test_user_toml_file_names_its_own_base_and_overrides_it(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('base = "smoke"\nname = "mine"\n\n[train]\nepochs = 2\n')
    spec = build_spec(None, path)
    assert spec.name == "mine"
    assert spec.train.epochs == 2
    assert spec.train.batch_size == 64  # from smoke
    assert spec.model.width_multiplier == 0.25  # from smoke
    assert spec.qat.lr == pytest.approx(0.001)  # from paper, through smoke


def test_user_file_base_wins_over_the_preset_argument(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('base = "smoke"\n')
    assert build_spec("paper", path).model.width_multiplier == 0.25


def test_user_file_without_base_builds_on_the_given_preset(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("[train]\nepochs = 2\n")
    spec = build_spec("quick", path)
    assert spec.train.epochs == 2
    assert spec.data.train_limit == 10000


def test_user_json_file_loads_and_overrides_apply_on_top(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "j", "train": {"epochs": 1, "milestones": [0]}}))
    spec = build_spec("smoke", path, ["train.lr=0.02"])
    assert spec.name == "j"
    assert spec.train.epochs == 1
    assert spec.train.milestones == [0]
    assert spec.train.lr == 0.02
    assert spec.data.train_limit == build_spec("smoke").data.train_limit  # inherited


def test_json_file_may_name_a_base(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"base": "paper", "seed": 7}))
    spec = build_spec("smoke", path)
    assert spec.seed == 7
    assert spec.model.width_multiplier == 1.0


def test_user_file_with_an_unknown_base_is_rejected_listing_presets(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('base = "huge"\n')
    with pytest.raises(SpecError) as info:
        build_spec(None, path)
    assert "huge" in info.value.one_line()
    assert "smoke" in info.value.one_line()


def test_user_file_with_an_unknown_key_is_rejected_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("[model]\nwidth = 2.0\n")
    with pytest.raises(SpecError) as info:
        build_spec("smoke", path)
    assert "model.width" in info.value.one_line()


@pytest.mark.parametrize(
    ("name", "text"),
    [("bad.toml", "[train\nepochs = 3\n"), ("bad.json", '{"train": {"epochs": 3,}')],
)
def test_unparsable_spec_file_is_rejected_naming_its_path(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        build_spec("smoke", path)
    line = info.value.one_line()
    assert str(path) in line
    assert "parsed" in line
    assert "\n" not in line


def test_json_spec_file_that_is_not_an_object_is_rejected_naming_its_path(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2, 3]")
    with pytest.raises(SpecError) as info:
        build_spec("smoke", path)
    assert str(path) in info.value.one_line()


def test_missing_spec_file_is_rejected_naming_its_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(SpecError) as info:
        build_spec("smoke", path)
    assert str(path) in info.value.one_line()
    assert "does not exist" in info.value.one_line()


# ---------------------------------------------------------------- digest and serialization

# One override per leaf field of the paper spec, each to a different valid value.
_CHANGE_EVERY_FIELD = {
    "name": "other",
    "seed": "1",
    "device": "cpu",
    "deterministic": "true",
    "model.variant": "bn",
    "model.width_multiplier": "0.5",
    "model.blocks_per_stage": "1",
    "model.zero_init_residual": "false",
    "model.init": "framework",
    "data.train_limit": "20000",
    "data.test_limit": "100",
    "data.mean": "[0.5,0.4822,0.4465]",
    "data.std": "[0.2470,0.2435,0.3]",
    "data.augment.crop_padding": "2",
    "data.augment.hflip": "false",
    "train.epochs": "49",
    "train.batch_size": "64",
    "train.lr": "0.2",
    "train.momentum": "0.8",
    "train.weight_decay": "1e-4",
    "train.milestones": "[25,41]",
    "train.gamma": "0.2",
    "train.warmup_epochs": "2.0",
    "train.grad_clip_norm": "none",
    "ptq.enabled": "false",
    "ptq.calibration_samples": "512",
    "ptq.calibration_batch_size": "16",
    "qat.enabled": "false",
    "qat.epochs": "4",
    "qat.batch_size": "64",
    "qat.lr": "0.002",
    "qat.momentum": "0.8",
    "qat.weight_decay": "1e-4",
    "qat.milestones": "[2]",
    "qat.gamma": "0.2",
    "qat.warmup_epochs": "0.5",
    "qat.grad_clip_norm": "2.0",
    "measure.threads": "2",
    "measure.eval_batch_size": "128",
    "measure.rung_variants": '["ptq"]',
    "measure.latency.batch_sizes": "[1,64]",
    "measure.latency.warmup_count": "21",
    "measure.latency.warmup_seconds": "2.0",
    "measure.latency.min_count": "201",
    "measure.latency.min_seconds": "6.0",
    "measure.latency.max_count": "99999",
    "measure.latency.max_seconds": "100.0",
    "measure.latency.thread_sweep": "false",
    "measure.profile.enabled": "false",
    "measure.profile.train": "false",
    "measure.profile.inference": "false",
    "measure.profile.wait": "0",
    "measure.profile.warmup": "1",
    "measure.profile.active": "5",
    "measure.profile.inference_batch_size": "8",
    "measure.profile.record_shapes": "true",
    "measure.profile.with_stack": "true",
    "measure.profile.profile_memory": "true",
    "pytorch.quant_flow": "fx",
    "pytorch.runtimes": '["executorch"]',
    "tensorflow.runtimes": "[]",
    "tensorflow.qat_flow": "dense_only",
    "support.enabled": "false",
    "support.timeout_s": "5",
    "analysis.enabled": "false",
    "analysis.images": "64",
    "analysis.keep_float": "[1]",
    "analysis.what_if_variants": '["ptq"]',
    "analysis.ranking": "sensitivity",
    "model.arch": "vit",
    "model.vit.patch": "8",
    "model.vit.dim": "96",
    "model.vit.depth": "3",
    "model.vit.heads": "2",
    "model.vit.mlp_ratio": "4.0",
}


def test_digest_is_stable_for_equal_specs_built_by_different_routes() -> None:
    a = build_spec("smoke")
    b = build_spec("smoke", None, ["train.epochs=3", "train.lr=0.05"])
    assert a == b
    assert a.digest() == b.digest() == build_spec("smoke").digest()
    assert len(a.digest()) == 16


def test_change_table_covers_every_field() -> None:
    leaves = _leaves(build_spec("paper").model_dump(mode="json"))
    assert leaves == set(_CHANGE_EVERY_FIELD)


@pytest.mark.parametrize(("key", "value"), sorted(_CHANGE_EVERY_FIELD.items()))
def test_digest_changes_when_any_field_changes(key: str, value: str) -> None:
    base = build_spec("paper")
    changed = build_spec("paper", None, [f"{key}={value}"])
    assert changed != base
    assert changed.digest() != base.digest()


def test_to_json_round_trips_through_load_resolved_spec(tmp_path: Path) -> None:
    spec = build_spec("smoke", None, ["measure.threads=3", "train.grad_clip_norm=none", "seed=11"])
    path = tmp_path / "spec.json"
    path.write_text(spec.to_json())
    loaded = load_resolved_spec(path)
    assert loaded == spec
    assert loaded.digest() == spec.digest()
    assert loaded.to_json() == spec.to_json()


def test_load_resolved_spec_rejects_an_invalid_value_naming_the_key(tmp_path: Path) -> None:
    raw = json.loads(build_spec("smoke").to_json())
    raw["train"]["epochs"] = -5
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SpecError) as info:
        load_resolved_spec(path)
    assert "train.epochs" in info.value.one_line()


def test_effective_threads_honours_measure_threads() -> None:
    assert effective_threads(build_spec("smoke", None, ["measure.threads=3"])) == 3


def test_effective_threads_defaults_to_the_usable_cores() -> None:
    threads = effective_threads(build_spec("smoke"))
    assert threads >= 1
    if hasattr(os, "sched_getaffinity"):
        assert threads == len(os.sched_getaffinity(0))


def test_a_vit_whose_width_does_not_split_into_its_heads_is_refused_with_the_fix() -> None:
    with pytest.raises(SpecError) as info:
        build_spec("smoke", None, ["model.arch=vit", "model.vit.dim=64", "model.vit.heads=5"])
    line = info.value.one_line()
    assert "model.vit" in line and "multiple of model.vit.heads" in line
