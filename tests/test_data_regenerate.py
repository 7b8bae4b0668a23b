"""A damaged synthetic dataset: the fix `data verify` offers is a command that works (and
gives back the very same data); --force replaces only synthetic data the harness made,
never real data."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from harness.cli.main import main
from harness_contract.data.cifar import check_dataset, write_synthetic
from harness_contract.data.cifar_format import SYNTHETIC_MARKER
from tests.cli_output import one_error_line


def _damage(batches: Path) -> None:
    path = batches / "data_batch_2"
    path.write_bytes(path.read_bytes()[:100])


def test_the_command_verify_offers_for_a_damaged_synthetic_dataset_repairs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batches = write_synthetic(tmp_path / "d", train_per_batch=20, test_count=30, seed=3)
    digest = check_dataset(batches).digest
    _damage(batches)

    assert main(["data", "verify", str(tmp_path / "d")]) == 2
    line = one_error_line(capsys.readouterr().err)
    (offered,) = re.findall(r"`(harness data synth [^`]+)`", line)

    code = main(shlex.split(offered)[1:])

    assert code == 0, capsys.readouterr().err
    assert main(["data", "verify", str(tmp_path / "d")]) == 0
    assert check_dataset(batches).digest == digest  # the same sizes and seed: the same data


def test_force_never_replaces_real_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batches = write_synthetic(tmp_path / "d", train_per_batch=20, test_count=30)
    (batches / SYNTHETIC_MARKER).unlink()  # now it reads as real data
    before = {p.name: p.read_bytes() for p in batches.iterdir()}

    code = main(["data", "synth", str(tmp_path / "d"), "--force"])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "real" in line and "--force" in line
    assert {p.name: p.read_bytes() for p in batches.iterdir()} == before


def test_without_force_a_synthetic_dataset_is_still_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_synthetic(tmp_path / "d", train_per_batch=20, test_count=30)

    code = main(["data", "synth", str(tmp_path / "d")])

    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "--force" in line  # says how, since it is the harness's own data
