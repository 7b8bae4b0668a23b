"""One owner per protocol: the runner's command line comes from the builder beside its
parser (both backends use it), and the run directory's paths come from RunDir."""

from __future__ import annotations

import io
import shlex
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from rich.console import Console

from harness.launch.base import LaunchRequest
from harness.launch.local import LocalBackend
from harness.run.orchestrate import run_frameworks
from harness.run.progress import RunDisplay
from harness.run.rundir import RunDir
from harness_contract.entrypoint import parse_args, runner_command
from harness_contract.frameworks import FRAMEWORKS
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import ImageIdentity
from harness_contract.spec import build_spec

pytest_plugins = ("tests.run_fixtures",)


def test_runner_command_round_trips_through_the_parser() -> None:
    argv = runner_command(
        Path("/r/spec.json"), Path("/d ata"), Path("/r/pytorch"), "run 1", "local (python)"
    )
    args = parse_args(argv, "runner")
    assert args.spec == Path("/r/spec.json") and args.data == Path("/d ata")
    assert args.out == Path("/r/pytorch") and args.run_id == "run 1"
    assert args.runtime == "local (python)"


IMAGE = ImageIdentity(
    repository="127.0.0.1:5000/quant-harness-pytorch",
    tag="0.1.0",
    digest="127.0.0.1:5000/quant-harness-pytorch@sha256:" + "a" * 64,
    id="sha256:" + "b" * 64,
)


def test_the_image_identity_round_trips_through_the_parser() -> None:
    argv = runner_command(Path("/s"), Path("/d"), Path("/o"), "r", "docker", image=IMAGE)
    assert argv[-1].startswith("--image=")
    assert parse_args(argv, "runner").image == IMAGE


def test_without_an_image_the_command_line_has_no_image_argument() -> None:
    argv = runner_command(Path("/s"), Path("/d"), Path("/o"), "r", "local")
    assert not any(a.startswith("--image") for a in argv)
    assert parse_args(argv, "runner").image is None


def test_a_malformed_image_identity_exits_2_naming_the_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = runner_command(Path("/s"), Path("/d"), Path("/o"), "r", "docker")
    with pytest.raises(SystemExit) as exit_info:
        parse_args([*argv, "--image", '{"repository": "r", "id": "sha256:short"}'], "runner")
    assert exit_info.value.code == 2
    assert "argument --image: not an image identity (id:" in capsys.readouterr().err


def test_the_local_backend_starts_the_runner_with_the_contract_command_line(
    tmp_path: Path, tiny_data: Path, fake_runners
) -> None:
    run = RunDir.create(tmp_path / "results", build_spec("smoke"), "r")
    pytorch = FRAMEWORKS["pytorch"]
    with RunDisplay(Console(file=io.StringIO())) as display:
        (result,) = run_frameworks(run, [pytorch], LocalBackend(), tiny_data, display, 60)

    assert result.outcome == "complete", result.message
    first = run.framework("pytorch").log.read_text().splitlines()[0]
    expected = [sys.executable, "-m", pytorch.runner_module]
    expected += runner_command(
        run.spec_path, tiny_data, run.framework("pytorch").path, "r", f"local ({sys.executable})"
    )
    assert shlex.split(first[2:]) == expected


def test_the_docker_backend_passes_the_contract_command_line(tmp_path: Path) -> None:
    pytest.importorskip("docker", reason="docker SDK not installed")
    from harness.images.identity import RunImage
    from harness.launch.docker import DockerBackend

    request = LaunchRequest(
        FRAMEWORKS["pytorch"], tmp_path / "spec.json", tmp_path, tmp_path / "pytorch", "r", None
    )
    run_image = RunImage(ref=IMAGE.digest or "", identity=IMAGE)
    kwargs = DockerBackend(client=object())._container_kwargs(request, run_image, "1:1")

    assert kwargs["command"] == runner_command(
        PurePosixPath("/results/spec.json"),
        PurePosixPath("/data"),
        PurePosixPath("/results/pytorch"),
        "r",
        f"docker image {IMAGE.digest} ({IMAGE.id})",
        image=IMAGE,
    )
    args = parse_args(kwargs["command"], "runner")
    assert args.out == Path("/results/pytorch") and args.image == IMAGE


def test_a_launch_request_logs_where_the_layout_says(tmp_path: Path) -> None:
    request = LaunchRequest(FRAMEWORKS["pytorch"], tmp_path, tmp_path, tmp_path / "pytorch", "r")
    assert request.log_path == FrameworkDir(tmp_path / "pytorch").log


def test_run_dir_opens_with_its_spec(tmp_path: Path) -> None:
    spec = build_spec("smoke")
    RunDir.create(tmp_path, spec, "r")
    assert RunDir.open(tmp_path / "r").spec == spec


class _StubbornContainer:
    """A container that ignores SIGTERM (a runner stuck in native code)."""

    def __init__(self) -> None:
        self.kills: list[Any] = []
        self.status = "running"

    def kill(self, signal: str | None = None) -> None:
        self.kills.append(signal)
        if signal in (None, "SIGKILL"):  # the SDK's default signal is SIGKILL
            self.status = "exited"

    def reload(self) -> None: ...


def test_a_second_ctrl_c_kills_a_container_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("docker", reason="docker SDK not installed")
    from harness.launch import container
    from harness.run import interrupts

    monkeypatch.setattr(interrupts, "hurry", lambda: True)
    stubborn = _StubbornContainer()

    container.stop(stubborn)  # type: ignore[arg-type]

    assert stubborn.kills == ["SIGTERM", "SIGKILL"] and stubborn.status == "exited"


def test_run_dir_names_the_frameworks_a_run_was_started_for(
    tmp_path: Path, tiny_data: Path, fake_runners
) -> None:
    from harness.cli.main import main

    fake_runners.setenv("FAKE_RUNNER", "pytorch=killed")
    argv = ["compare", "--data", str(tiny_data), "--results", str(tmp_path), "--run-id", "r"]
    assert main(argv) == 1
    assert RunDir(tmp_path / "r").asked_frameworks() == ["pytorch", "tensorflow"]
    assert RunDir(tmp_path).asked_frameworks() == []  # no run.json: nothing recorded
