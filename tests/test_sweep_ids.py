"""A sweep id is checked like a run id (the points' runners and every printed path carry
it), and two sweeps started in the same second never collide on a default id."""

from __future__ import annotations

import pytest

from harness.sweep.index import SweepDir
from harness_contract.errors import HarnessError


@pytest.mark.parametrize(
    ("sweep_id", "problem"),
    [
        ("-x", "starts with '-'"),
        ("--", "starts with '-'"),
        ("a\nb", "control character"),
        ("", "is empty"),
        ("a/b", "path separator"),
        ("x" * 201, "longer than"),
    ],
)
def test_a_sweep_id_no_path_or_command_line_can_carry_is_refused_before_anything_is_made(
    tmp_path, sweep_id, problem
):
    with pytest.raises(HarnessError) as caught:
        SweepDir.create(tmp_path, sweep_id)
    assert problem in caught.value.one_line()
    assert "--sweep-id" in caught.value.one_line()
    assert list(tmp_path.iterdir()) == []


def test_two_sweeps_started_in_the_same_second_get_different_default_ids(tmp_path):
    first = SweepDir.create(tmp_path, None)
    second = SweepDir.create(tmp_path, None)
    assert first.path != second.path
    assert first.path.name.startswith("sweep-") and second.path.name.startswith("sweep-")
