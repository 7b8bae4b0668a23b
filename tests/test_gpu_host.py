"""`--gpus` on a host without an NVIDIA GPU fails in one line before any runner starts;
with nvidia-smi listing a GPU, the host passes the check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.launch.gpus import host_gpu_problem
from tests.cli_output import one_error_line


def _fake_nvidia_smi(folder: Path, listing: str, code: int = 0) -> None:
    folder.mkdir()
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '{listing}'\nexit {code}\n")
    script.chmod(0o755)


def test_gpus_on_a_host_without_nvidia_smi_is_one_line_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no nvidia-smi anywhere
    results = tmp_path / "results"
    code = main(["compare", "--preset", "smoke", "--gpus", "all", "--results", str(results)])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert "--gpus all asks for GPUs but this host has none" in line
    assert "nvidia-smi is not installed" in line and "drop --gpus" in line
    assert not results.exists()  # no run directory, no runner started


def test_a_driver_that_lists_no_gpu_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_nvidia_smi(tmp_path / "bin", "", code=9)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert host_gpu_problem() == "nvidia-smi -L: it lists no GPU"


def test_a_host_whose_nvidia_smi_lists_a_gpu_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_nvidia_smi(tmp_path / "bin", "GPU 0: NVIDIA H100 (UUID: GPU-1234)\\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert host_gpu_problem() is None
