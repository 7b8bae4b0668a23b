"""Fixtures the run-ownership tests share (imported by name into each test module)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness_contract.data.cifar import write_synthetic
from tests.fake_runner import use_fake_runners


@pytest.fixture(autouse=True)
def restore_signal_handlers() -> Iterator[None]:
    """harness.cli.main.main installs SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture
def fake_runners(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Every framework served by tests/fake_runner.py; its mode set with $FAKE_RUNNER."""
    use_fake_runners(monkeypatch)
    monkeypatch.setenv("FAKE_RUNNER", "complete")
    return monkeypatch


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    return write_synthetic(tmp_path / "data", train_per_batch=400, test_count=500, seed=0)
