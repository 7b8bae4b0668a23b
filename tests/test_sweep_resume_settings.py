"""A resumed sweep never mixes settings that change what a latency means (issue 17, item
5): with finished points, another --threads, --executor, --parallel or --backend is
refused in one line naming the old and new value and the fix, before anything runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.sweep.index import PointRecord, SweepDir, SweepSettings
from harness.sweep.plan import SweepSpec
from tests.cli_output import one_error_line


@pytest.fixture(autouse=True)
def no_real_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """A point that did run would fail at once (exit 3), never train a model."""
    monkeypatch.setattr(
        "harness.sweep.point.DEFAULT_LAUNCHER", (sys.executable, "-c", "raise SystemExit(3)")
    )


def _sweep(tmp_path: Path, statuses: tuple[str, ...] = ("ok", "failed")) -> SweepDir:
    sweep = SweepDir.create(tmp_path, "r")
    sweep.write_spec(SweepSpec(seeds=[0, 1]), SweepSettings(threads=2, parallel=1))
    records = {
        f"pytorch-seed{i}": PointRecord(f"pytorch-seed{i}", "pytorch", i, [], status=status)
        for i, status in enumerate(statuses)
    }
    sweep.write_index(records)
    return sweep


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--threads", "1"], "--threads 1 (the finished points ran with 2)"),
        (["--parallel", "2"], "--parallel 2 (the finished points ran with 1)"),
        (["--backend", "docker"], "--backend docker (the finished points ran with local)"),
        (["--executor", "ray"], "--executor ray (the finished points ran with local)"),
    ],
)
def test_a_resume_that_would_pool_unlike_latencies_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    named: str,
) -> None:
    sweep = _sweep(tmp_path)
    before = sweep.spec_path.read_text()
    assert main(["sweep", "--resume", str(sweep.path), *args]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert named in line
    assert "would be pooled with" in line
    assert f"drop {args[0]}" in line and "or start a new sweep" in line
    assert sweep.spec_path.read_text() == before  # nothing recorded, nothing run


def test_the_same_settings_resume_as_before(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    sweep = _sweep(tmp_path, statuses=("ok",))
    assert main(["sweep", "--resume", str(sweep.path), "--threads", "2"]) == 0
    assert "error" not in capsys.readouterr().err
