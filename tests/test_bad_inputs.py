"""The last bad inputs that slipped through (issue 18): each is refused up front in one line
naming the problem and the fix, or accepted as meant; never a traceback, never a run
directory that can never finish."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.run.rundir import RunDir
from harness.sweep.plan import build_sweep
from harness_contract.entrypoint import parse_args, runner_command
from harness_contract.errors import HarnessError, SpecError
from harness_contract.spec import build_spec
from tests.cli_output import one_error_line

pytest_plugins = ("tests.run_fixtures",)


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    line = one_error_line(capsys.readouterr().err)
    assert code == 2, line
    return line


# ---------------------------------------------------------------- 2, 7: run ids


@pytest.mark.parametrize(
    ("run_id", "words"),
    [
        ("--", "starts with '-'"),
        ("-x", "starts with '-'"),
        ("a\nb", "control character"),
        ("tab\there", "control character"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("..", "not a name"),
        ("x" * 201, "longer than"),
        ("", "is empty"),
        ("   ", "is empty"),
    ],
)
def test_a_run_id_the_runner_or_a_path_cannot_take_is_refused_before_anything_is_made(
    run_id: str,
    words: str,
    tmp_path: Path,
    tiny_data: Path,
    fake_runners,
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = tmp_path / "results"

    line = _refused(capsys, "run", "pytorch", "--data", str(tiny_data), "--results",
                    str(results), f"--run-id={run_id}")  # fmt: skip

    assert "--run-id" in line and words in line, line
    assert "\n" not in line
    assert not results.exists() or list(results.iterdir()) == []


def test_every_value_reaches_the_runner_as_a_value_never_as_an_option() -> None:
    argv = runner_command(
        Path("-spec.json"), Path("--data"), Path("-out"), "-x", "--runtime", image=None
    )

    args = parse_args(argv, "runner")

    assert (args.spec, args.data, args.out) == (Path("-spec.json"), Path("--data"), Path("-out"))
    assert args.run_id == "-x" and args.runtime == "--runtime"


# ---------------------------------------------------------------- 3: default run ids


def test_two_runs_started_in_the_same_second_get_their_own_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206
            return datetime(2026, 11, 26, 22, 31, 13, tzinfo=UTC)

    monkeypatch.setattr("harness.run.rundir.datetime", Frozen)
    spec = build_spec("smoke")

    first = RunDir.reserve(tmp_path, spec, None)
    second = RunDir.reserve(tmp_path, spec, None)

    assert first.path != second.path
    assert first.run_id.startswith("20261126-223113") and "smoke" in first.run_id


def test_a_chosen_run_id_that_exists_is_still_refused(tmp_path: Path) -> None:
    spec = build_spec("smoke")
    RunDir.reserve(tmp_path, spec, "mine")
    with pytest.raises(HarnessError, match="already exists"):
        RunDir.reserve(tmp_path, spec, "mine")


# ---------------------------------------------------------------- 4: duplicates


def test_a_latency_batch_size_listed_twice_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        build_spec("smoke", overrides=["measure.latency.batch_sizes=[1,8,1]"])
    line = caught.value.one_line()
    assert "measure.latency.batch_sizes" in line and "1" in line and "once" in line


@pytest.mark.parametrize("option", ["ptq.calibration_samples=128,128", "train.lr=0.1,0.10"])
def test_a_grid_value_listed_twice_is_refused(option: str) -> None:
    with pytest.raises(HarnessError) as caught:
        build_sweep(grid=[option])
    line = caught.value.one_line()
    assert option.split("=")[0] in line and "more than once" in line


def test_a_sweep_file_grid_value_listed_twice_is_refused(tmp_path: Path) -> None:
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text('[grid]\n"ptq.calibration_samples" = [128, 512, 128]\n')
    with pytest.raises(HarnessError, match="more than once"):
        build_sweep(file=sweep_file)


# ---------------------------------------------------------------- 7: types and messages


@pytest.mark.parametrize(
    "override", ["train.epochs=true", "seed=false", "train.lr=true", "data.mean=[0.5,true,0.5]"]
)
def test_a_boolean_is_not_a_number(override: str) -> None:
    with pytest.raises(SpecError) as caught:
        build_spec("smoke", overrides=[override])
    line = caught.value.one_line()
    key = override.split("=")[0]
    assert f"'{key}'" in line and "boolean" in line and "number" in line


def test_a_boolean_field_still_takes_a_boolean() -> None:
    assert build_spec("smoke", overrides=["ptq.enabled=false"]).ptq.enabled is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[inductor]", ["inductor"]),
        ("[inductor, executorch]", ["inductor", "executorch"]),
        ('["inductor"]', ["inductor"]),
        ("[]", []),
    ],
)
def test_a_list_of_bare_words_is_a_list_of_strings(value: str, expected: list[str]) -> None:
    assert build_spec("smoke", overrides=[f"pytorch.runtimes={value}"]).pytorch.runtimes == expected


def test_a_bad_name_in_a_bare_list_is_named_with_the_choices() -> None:
    with pytest.raises(SpecError) as caught:
        build_spec("smoke", overrides=["pytorch.runtimes=[inductr]"])
    line = caught.value.one_line()
    assert "pytorch.runtimes" in line and "inductr" in line and "valid list" not in line


def test_an_unknown_key_in_a_runs_own_spec_json_names_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = RunDir.create(tmp_path / "results", build_spec("smoke"), "r")
    raw = json.loads(run.spec_path.read_text())
    raw["train"]["epochz"] = 3
    run.spec_path.write_text(json.dumps(raw))

    line = _refused(capsys, "run", "pytorch", "--resume", str(run.path))

    assert "train.epochz" in line and str(run.spec_path) in line


def test_an_unknown_key_in_a_spec_file_names_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_file = tmp_path / "mine.toml"
    spec_file.write_text("[train]\nepochz = 3\n")

    line = _refused(capsys, "spec", "--spec", str(spec_file))

    assert "train.epochz" in line and str(spec_file) in line


def test_spec_pointing_at_a_directory_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _refused(capsys, "spec", "--spec", str(tmp_path))
    assert "is a directory" in line and "does not exist" not in line


def test_sweep_resume_of_a_missing_directory_says_it_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _refused(capsys, "sweep", "--resume", str(tmp_path / "nope"))
    assert str(tmp_path / "nope") in line and "does not exist" in line


def test_sweep_resume_of_a_file_says_it_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    line = _refused(capsys, "sweep", "--resume", str(afile))
    assert str(afile) in line and "is a file" in line
