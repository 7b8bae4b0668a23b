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


@pytest.mark.parametrize("backend", ["docker", "auto"])
def test_gpus_for_containers_on_a_host_without_a_gpu_is_one_line_before_any_container(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An engine on this host that answers, with both images: the GPUs it would hand a
    container are this host's, so their absence is known before a run directory exists."""
    from harness.launch.docker import DockerBackend

    monkeypatch.setattr(DockerBackend, "unavailable_reason", lambda self: None)
    monkeypatch.setattr("harness.images.build.missing_images", lambda: [])
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no nvidia-smi anywhere
    results = tmp_path / "results"
    argv = ["compare", "--preset", "smoke", "--gpus", "all", "--backend", backend]
    code = main([*argv, "--results", str(results)])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert "--gpus all asks for GPUs but this host has none" in line
    assert "nvidia-smi is not installed" in line
    assert not results.exists()  # no run directory, no container started


def test_an_engine_on_another_host_is_left_to_say_what_gpus_it_has(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from harness.launch import get_backend
    from harness.launch.docker import DockerBackend
    from harness.launch.gpus import parse_gpus

    monkeypatch.setattr(DockerBackend, "unavailable_reason", lambda self: None)
    monkeypatch.setenv("DOCKER_HOST", "tcp://gpu-box:2376")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert get_backend("docker", parse_gpus("all")).name == "docker"
