"""The Docker backend's pre-flight check that the container's user can read the dataset
(no engine needed)."""

from __future__ import annotations

import os
from pathlib import Path

from harness.launch.docker import _unreadable_by


def test_a_dataset_the_container_user_cannot_read_is_refused_before_starting(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    batch = data / "data_batch_1"
    batch.write_bytes(b"x")
    batch.chmod(0o600)
    owner = os.stat(batch).st_uid
    other = owner + 1000
    assert _unreadable_by(data, f"{other}:{other}") == batch
    assert _unreadable_by(data, f"{owner}:{owner}") is None  # its owner may read it
    batch.chmod(0o644)
    assert _unreadable_by(data, f"{other}:{other}") is None
