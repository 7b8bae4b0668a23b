"""The framework-neutral ResNet18 table, its seeded initial weights and the lr schedule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness_contract.model.architecture import ResNetDef, resnet18, stage_widths
from harness_contract.model.weights import (
    initial_weights,
    load_weights,
    save_weights,
    weights_digest,
)
from harness_contract.spec import ModelSpec, OptimSpec
from harness_contract.study.schedule import lr_at


def _model(**fields: object) -> ModelSpec:
    return ModelSpec(**fields)


def _closing_convs(net: ResNetDef) -> list[str]:
    return [f"{b.name}.conv2" for b in net.blocks]


def _expected_parameters(widths: tuple[int, ...], bn: bool) -> int:
    """Counted from the architecture's description, independently of architecture.py."""
    per_conv_extra = 2 if bn else 1  # BN gamma+beta, or a conv bias

    def conv(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k + per_conv_extra * cout

    total = conv(3, widths[0], 3)
    cin = widths[0]
    for stage, cout in enumerate(widths):
        for block in range(2):
            total += conv(cin, cout, 3) + conv(cout, cout, 3)
            if block == 0 and (stage > 0 or cin != cout):
                total += conv(cin, cout, 1)
            cin = cout
    return total + cin * 10 + 10


# ---------------------------------------------------------------- architecture


def test_nobn_resnet18_has_exactly_the_papers_parameter_count() -> None:
    assert resnet18(_model(variant="nobn", width_multiplier=1.0)).parameter_count() == 11_169_162


def test_bn_resnet18_has_exactly_the_usual_cifar_parameter_count() -> None:
    assert resnet18(_model(variant="bn", width_multiplier=1.0)).parameter_count() == 11_173_962


@pytest.mark.parametrize("variant", ["nobn", "bn"])
@pytest.mark.parametrize("width", [0.125, 0.25, 0.5, 1.0, 2.0])
def test_parameter_count_matches_an_independent_count_at_every_width(
    variant: str, width: float
) -> None:
    net = resnet18(_model(variant=variant, width_multiplier=width))
    assert net.parameter_count() == _expected_parameters(stage_widths(width), variant == "bn")


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (1.0, (64, 128, 256, 512)),
        (0.5, (32, 64, 128, 256)),
        (0.25, (16, 32, 64, 128)),
        (2.0, (128, 256, 512, 1024)),
        (0.001, (1, 1, 1, 1)),
    ],
)
def test_stage_widths_scale_with_the_width_multiplier(
    width: float, expected: tuple[int, ...]
) -> None:
    assert stage_widths(width) == expected


def test_width_multiplier_scales_every_tensor_shape() -> None:
    shapes = resnet18(_model(width_multiplier=0.5)).tensor_shapes()
    assert shapes["stem.weight"] == (32, 3, 3, 3)
    assert shapes["stages.0.0.conv1.weight"] == (32, 32, 3, 3)
    assert shapes["stages.3.1.conv2.weight"] == (256, 256, 3, 3)
    assert shapes["fc.weight"] == (10, 256)


def test_tensor_shapes_use_canonical_oihw_convs_and_out_in_dense() -> None:
    shapes = resnet18(_model()).tensor_shapes()
    assert shapes["stem.weight"] == (64, 3, 3, 3)
    assert shapes["stem.bias"] == (64,)
    assert shapes["stages.1.0.conv1.weight"] == (128, 64, 3, 3)
    assert shapes["stages.1.0.conv2.weight"] == (128, 128, 3, 3)
    assert shapes["stages.1.0.shortcut.weight"] == (128, 64, 1, 1)
    assert shapes["stages.3.1.conv2.weight"] == (512, 512, 3, 3)
    assert shapes["fc.weight"] == (10, 512)
    assert shapes["fc.bias"] == (10,)


def test_only_the_first_block_of_a_downsampling_stage_has_a_projection_shortcut() -> None:
    net = resnet18(_model())
    shortcuts = {b.name: b.shortcut for b in net.blocks}
    assert [name for name, s in shortcuts.items() if s is not None] == [
        "stages.1.0",
        "stages.2.0",
        "stages.3.0",
    ]
    for name in ("stages.1.0", "stages.2.0", "stages.3.0"):
        assert shortcuts[name].kernel == 1
        assert shortcuts[name].stride == 2
    assert [b.conv1.stride for b in net.blocks] == [1, 1, 2, 1, 2, 1, 2, 1]
    assert net.stem.stride == 1 and net.stem.kernel == 3


def test_nobn_convs_have_biases_and_no_batchnorm() -> None:
    shapes = resnet18(_model(variant="nobn")).tensor_shapes()
    assert not any("_bn." in name for name in shapes)
    assert all(f"{c.name}.bias" in shapes for c in resnet18(_model(variant="nobn")).convs())


def test_bn_convs_have_batchnorm_and_no_biases() -> None:
    net = resnet18(_model(variant="bn"))
    shapes = net.tensor_shapes()
    for c in net.convs():
        assert f"{c.name}.bias" not in shapes
        for stat in ("weight", "bias", "running_mean", "running_var"):
            assert shapes[f"{c.name}_bn.{stat}"] == (c.out_ch,)


def test_only_the_second_conv_of_each_block_closes_its_branch() -> None:
    net = resnet18(_model())
    closing = [c.name for c in net.convs() if c.closes_branch]
    assert closing == _closing_convs(net)
    assert len(closing) == 8


# ---------------------------------------------------------------- initial weights


@pytest.mark.parametrize("variant", ["nobn", "bn"])
def test_initial_weights_match_tensor_shapes_exactly(variant: str) -> None:
    model = _model(variant=variant, width_multiplier=0.25)
    weights = initial_weights(model, seed=0)
    expected = resnet18(model).tensor_shapes()
    assert {k: v.shape for k, v in weights.items()} == expected
    assert all(v.dtype == np.float32 for v in weights.values())


def test_initial_weights_are_deterministic_per_seed() -> None:
    model = _model(width_multiplier=0.25)
    a, b = initial_weights(model, seed=5), initial_weights(model, seed=5)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_initial_weights_differ_across_seeds() -> None:
    model = _model(width_multiplier=0.25)
    a, b = initial_weights(model, seed=0), initial_weights(model, seed=1)
    assert not np.array_equal(a["stem.weight"], b["stem.weight"])
    assert not np.array_equal(a["fc.weight"], b["fc.weight"])
    assert weights_digest(a) != weights_digest(b)


def test_initial_weights_follow_kaiming_normal_and_the_fc_bound() -> None:
    weights = initial_weights(_model(), seed=0)
    w = weights["stages.3.0.conv1.weight"]  # 512 x 256 x 3 x 3: plenty of samples
    assert w.mean() == pytest.approx(0.0, abs=1e-3)
    assert w.std() == pytest.approx(math.sqrt(2.0 / (256 * 9)), rel=0.01)
    assert np.all(weights["stem.bias"] == 0)
    bound = 1.0 / math.sqrt(512)
    assert np.abs(weights["fc.weight"]).max() <= bound
    assert np.abs(weights["fc.weight"]).max() > 0.9 * bound


def test_zero_init_residual_zeroes_the_last_conv_of_every_branch_only() -> None:
    model = _model(variant="nobn", width_multiplier=0.25, zero_init_residual=True)
    weights = initial_weights(model, seed=0)
    net = resnet18(model)
    closing = set(_closing_convs(net))
    for c in net.convs():
        w = weights[f"{c.name}.weight"]
        if c.name in closing:
            assert np.all(w == 0), c.name
        else:
            assert np.any(w != 0), c.name


def test_without_zero_init_residual_no_conv_is_zero() -> None:
    model = _model(variant="nobn", width_multiplier=0.25, zero_init_residual=False)
    weights = initial_weights(model, seed=0)
    for c in resnet18(model).convs():
        assert np.any(weights[f"{c.name}.weight"] != 0), c.name


def test_bn_variant_zeroes_the_gamma_of_closing_batchnorms_instead_of_their_convs() -> None:
    model = _model(variant="bn", width_multiplier=0.25, zero_init_residual=True)
    weights = initial_weights(model, seed=0)
    net = resnet18(model)
    closing = set(_closing_convs(net))
    for c in net.convs():
        assert np.any(weights[f"{c.name}.weight"] != 0), c.name
        gamma = weights[f"{c.name}_bn.weight"]
        assert np.all(gamma == (0.0 if c.name in closing else 1.0)), c.name
        assert np.all(weights[f"{c.name}_bn.bias"] == 0)
        assert np.all(weights[f"{c.name}_bn.running_mean"] == 0)
        assert np.all(weights[f"{c.name}_bn.running_var"] == 1)


def test_bn_variant_without_zero_init_residual_keeps_every_gamma_at_one() -> None:
    model = _model(variant="bn", width_multiplier=0.25, zero_init_residual=False)
    weights = initial_weights(model, seed=0)
    gammas = [v for k, v in weights.items() if k.endswith("_bn.weight")]
    assert gammas and all(np.all(g == 1.0) for g in gammas)


def test_weights_digest_is_stable_and_sensitive_to_one_value() -> None:
    model = _model(width_multiplier=0.25)
    weights = initial_weights(model, seed=0)
    digest = weights_digest(weights)
    assert digest == weights_digest(initial_weights(model, seed=0))
    assert len(digest) == 16
    changed = {k: v.copy() for k, v in weights.items()}
    changed["fc.bias"][3] += 1e-6
    assert weights_digest(changed) != digest


def test_weights_digest_ignores_dict_order() -> None:
    weights = initial_weights(_model(width_multiplier=0.25), seed=0)
    reordered = dict(reversed(list(weights.items())))
    assert weights_digest(reordered) == weights_digest(weights)


def test_save_and_load_weights_round_trip(tmp_path: Path) -> None:
    weights = initial_weights(_model(variant="bn", width_multiplier=0.25), seed=3)
    path = tmp_path / "init.npz"
    save_weights(path, weights)
    loaded = load_weights(path)
    assert loaded.keys() == weights.keys()
    for name in weights:
        assert loaded[name].dtype == weights[name].dtype
        np.testing.assert_array_equal(loaded[name], weights[name])
    assert weights_digest(loaded) == weights_digest(weights)


def test_save_weights_writes_exactly_the_given_path(tmp_path: Path) -> None:
    # BUG: np.savez appends ".npz" to a path without that suffix, so save_weights(p)
    # writes p.npz and load_weights(p) then cannot find p.
    weights = initial_weights(_model(width_multiplier=0.125), seed=0)
    path = tmp_path / "init.weights"
    save_weights(path, weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["init.weights"]
    assert weights_digest(load_weights(path)) == weights_digest(weights)


# ---------------------------------------------------------------- lr schedule


def test_linear_warm_up_rises_monotonically_to_the_base_lr() -> None:
    optim = OptimSpec(lr=0.1, warmup_epochs=2.0, milestones=[])
    steps = 10
    warm = [lr_at(optim, e, s, steps) for e in range(2) for s in range(steps)]
    assert all(0 < lr < 0.1 for lr in warm)
    assert all(b > a for a, b in zip(warm, warm[1:], strict=False))
    # Linear: equal increments of lr / (warm-up steps + 1).
    np.testing.assert_allclose(np.diff(warm), 0.1 / 21)
    assert warm[0] == pytest.approx(0.1 / 21)
    assert lr_at(optim, 2, 0, steps) == pytest.approx(0.1)
    assert lr_at(optim, 7, 3, steps) == pytest.approx(0.1)


def test_fractional_warm_up_ends_mid_epoch() -> None:
    optim = OptimSpec(lr=0.3, warmup_epochs=0.5, milestones=[])
    lrs = [lr_at(optim, 0, s, 4) for s in range(4)]
    assert lrs == pytest.approx([0.1, 0.2, 0.3, 0.3])


def test_without_warm_up_the_first_step_uses_the_full_lr() -> None:
    optim = OptimSpec(lr=0.1, warmup_epochs=0.0, milestones=[])
    assert lr_at(optim, 0, 0, 100) == pytest.approx(0.1)


def test_step_decay_multiplies_by_gamma_at_each_milestone() -> None:
    optim = OptimSpec(lr=0.1, gamma=0.1, milestones=[3, 6], warmup_epochs=0.0)
    by_epoch = [lr_at(optim, e, 5, 10) for e in range(9)]
    assert by_epoch == pytest.approx([0.1] * 3 + [0.01] * 3 + [0.001] * 3)
    # The decay starts at the milestone epoch's first step.
    assert lr_at(optim, 2, 9, 10) == pytest.approx(0.1)
    assert lr_at(optim, 3, 0, 10) == pytest.approx(0.01)


def test_paper_schedule_ends_at_the_qat_learning_rate() -> None:
    optim = OptimSpec(lr=0.1, gamma=0.1, milestones=[25, 40], warmup_epochs=1.0)
    assert lr_at(optim, 49, 390, 391) == pytest.approx(0.001)
    assert lr_at(optim, 24, 390, 391) == pytest.approx(0.1)
    assert lr_at(optim, 25, 0, 391) == pytest.approx(0.01)


def test_blocks_per_stage_sets_the_depth_and_one_makes_a_resnet10() -> None:
    """The smoke preset's ResNet10: one basic block per stage, the same stem, shortcuts
    and head; weights made from the same table."""
    deep, shallow = resnet18(_model()), resnet18(_model(blocks_per_stage=1))
    assert len(deep.convs()) == 20 and len(shallow.convs()) == 12  # + fc: 18 and 10 layers
    assert [b.name for b in shallow.blocks] == [f"stages.{s}.0" for s in range(4)]
    assert all(b.shortcut is not None for b in shallow.blocks[1:])
    assert set(shallow.tensor_shapes()) < set(deep.tensor_shapes())
    weights = initial_weights(_model(blocks_per_stage=1), seed=0)
    assert set(weights) == set(shallow.tensor_shapes())
