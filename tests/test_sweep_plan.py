"""The sweep spec: TOML and CLI shorthands, seeds, grid parsing, point names, and every
grid entry validated with the contract's spec loader before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.sweep.plan import (
    build_sweep,
    expand,
    parse_grid_option,
    parse_seeds,
    served_cells,
    validate,
)
from harness_contract.errors import HarnessError, SpecError


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_toml_sweep_spec_and_cli_shorthands_combine(tmp_path: Path) -> None:
    file = _write(
        tmp_path / "sweep.toml",
        'preset = "smoke"\nframeworks = ["pytorch"]\nseeds = [3, 5]\n'
        'set = ["train.epochs=1"]\n'
        '[grid]\n"ptq.calibration_samples" = [16, 32]\n'
        '[grid.pytorch]\nquant_flow = ["pt2e", "fx"]\n',
    )
    sweep = build_sweep(file, grid=["model.variant=bn,nobn"], sets=["qat.epochs=0"])
    assert sweep.preset == "smoke" and sweep.frameworks == ["pytorch"]
    assert sweep.seeds == [3, 5]
    assert sweep.sets == ["train.epochs=1", "qat.epochs=0"]
    assert sweep.grid == {
        "ptq.calibration_samples": [16, 32],
        "pytorch.quant_flow": ["pt2e", "fx"],
        "model.variant": ["bn", "nobn"],
    }
    points = expand(sweep)
    assert len(points) == 2 * 2 * 2 * 2  # cells x seeds x 1 framework
    first = points[0]
    assert first.name == "pytorch-calibration_samples=16-quant_flow=pt2e-variant=bn-seed3"
    assert first.overrides() == [
        "ptq.calibration_samples=16",
        'pytorch.quant_flow="pt2e"',
        'model.variant="bn"',
        "seed=3",
    ]
    assert len({p.name for p in points}) == len(points)


def test_cli_seeds_override_the_files_and_frameworks_default_to_both(tmp_path: Path) -> None:
    file = _write(tmp_path / "s.toml", "seeds = 2\n")
    sweep = build_sweep(file, seeds="4")
    assert sweep.seeds == [0, 1, 2, 3] and sweep.frameworks == ["pytorch", "tensorflow"]
    assert sweep.preset == "smoke" and sweep.grid == {}
    assert [p.name for p in expand(sweep)][:2] == ["pytorch-seed0", "tensorflow-seed0"]


@pytest.mark.parametrize(
    ("given", "seeds"),
    [(3, [0, 1, 2]), ("2", [0, 1]), ("0,5,7", [0, 5, 7]), ([4, 2], [4, 2])],
)
def test_seeds_are_a_count_or_a_list(given: object, seeds: list[int]) -> None:
    assert parse_seeds(given) == seeds


@pytest.mark.parametrize(
    ("given", "words"),
    [(0, "runs nothing"), ("a,b", "not a count"), ([1, 1], "repeats"), (True, "not a count")],
)
def test_bad_seeds_are_named(given: object, words: str) -> None:
    with pytest.raises(HarnessError, match=words):
        parse_seeds(given)


def test_a_grid_option_keeps_commas_inside_brackets() -> None:
    key, values = parse_grid_option("measure.latency.batch_sizes=[1,8],[32]")
    assert key == "measure.latency.batch_sizes" and values == [[1, 8], [32]]
    assert parse_grid_option("pytorch.quant_flow=pt2e,fx") == ("pytorch.quant_flow", ["pt2e", "fx"])
    with pytest.raises(HarnessError, match="KEY=V1,V2"):
        parse_grid_option("ptq.calibration_samples")


def test_an_unknown_grid_key_is_named_before_anything_runs() -> None:
    sweep = build_sweep(grid=["ptq.calibration_sample=16,32"])
    with pytest.raises(SpecError) as excinfo:
        validate(sweep, 1)
    line = excinfo.value.one_line()
    assert "grid value ptq.calibration_sample=16" in line
    assert "unknown spec key 'ptq.calibration_sample'" in line


def test_a_bad_grid_value_is_named_with_its_key() -> None:
    sweep = build_sweep(grid=["ptq.calibration_samples=16,0"])
    with pytest.raises(SpecError) as excinfo:
        validate(sweep, 1)
    line = excinfo.value.one_line()
    assert "grid value ptq.calibration_samples=0" in line and "got 0" in line


def test_a_cell_that_only_fails_in_combination_is_named() -> None:
    # Each value is fine alone; together the calibration needs more images than allowed.
    sweep = build_sweep(
        sets=["ptq.calibration_samples=16"],
        grid=["data.train_limit=100,2000", "ptq.calibration_samples=16,128"],
    )
    with pytest.raises(SpecError) as excinfo:
        validate(sweep, 1)
    line = excinfo.value.one_line()
    assert "grid cell data.train_limit=100, ptq.calibration_samples=128, seed 0" in line
    assert "exceeds the 100 training images" in line


def test_keys_the_sweep_sets_itself_are_refused() -> None:
    with pytest.raises(HarnessError) as excinfo:
        validate(build_sweep(grid=["seed=1,2"]), 1)
    assert "grid key 'seed' is set by the sweep itself; use seeds" in excinfo.value.one_line()
    with pytest.raises(HarnessError) as excinfo:
        validate(build_sweep(sets=["measure.threads=4"]), 1)
    assert "use --threads" in excinfo.value.one_line()


def test_an_unknown_sweep_file_key_is_named(tmp_path: Path) -> None:
    file = _write(tmp_path / "s.toml", 'preset = "smoke"\ngrids = {}\n')
    with pytest.raises(HarnessError, match="unknown sweep spec key 'grids'"):
        build_sweep(file)
    file = _write(tmp_path / "t.toml", '[grid]\n"ptq.calibration_samples" = 16\n')
    with pytest.raises(HarnessError, match="must list its values"):
        build_sweep(file)


def test_a_spec_file_is_resolved_beside_the_sweep_file(tmp_path: Path) -> None:
    _write(tmp_path / "base.toml", 'base = "smoke"\n[train]\nepochs = 1\n')
    file = _write(tmp_path / "s.toml", 'spec = "base.toml"\n')
    sweep = build_sweep(file)
    assert sweep.spec_file == str((tmp_path / "base.toml").resolve()) and sweep.preset is None
    validate(sweep, 1)


def test_a_framework_key_does_not_multiply_the_other_frameworks_points() -> None:
    """A grid over pytorch.* runs TensorFlow once per seed, not once per PyTorch value:
    the copies would be the same run twice (same seed, same spec for TensorFlow)."""
    sweep = build_sweep(seeds="2", grid=["pytorch.quant_flow=pt2e,fx"])
    points = expand(sweep)
    torch_points = [p for p in points if p.framework == "pytorch"]
    tf_points = [p for p in points if p.framework == "tensorflow"]
    assert len(torch_points) == 4 and len(tf_points) == 2
    assert [p.seed for p in tf_points] == [0, 1]
    assert all(p.cell == () and p.overrides() == [f"seed={p.seed}"] for p in tf_points)
    assert {p.cell for p in torch_points} == {
        (("pytorch.quant_flow", "pt2e"),),
        (("pytorch.quant_flow", "fx"),),
    }
    # each TensorFlow point serves both cells of the grid
    labels = ["pytorch.quant_flow=pt2e", "pytorch.quant_flow=fx"]
    assert served_cells(sweep, tf_points[0]) == labels
    assert served_cells(sweep, torch_points[0]) == [torch_points[0].cell_label]


def test_a_grid_over_the_architecture_runs_each_network_in_both_frameworks() -> None:
    sweep = build_sweep(seeds="1", grid=["model.arch=resnet18,vit"])
    validate(sweep, None)
    points = expand(sweep)
    assert sorted((p.framework, p.cell) for p in points) == sorted(
        (fw, (("model.arch", arch),))
        for fw in ("pytorch", "tensorflow")
        for arch in ("resnet18", "vit")
    )
    assert all(f'model.arch="{dict(p.cell)["model.arch"]}"' in p.overrides() for p in points)
