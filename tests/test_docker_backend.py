"""The Docker backend against the real engine, with a throwaway fake-runner image.

No registry can be reached, so the image is built FROM scratch out of the host's own
dash, sleep and C library (a few MB). The fake runner sources the spec file the backend
mounts (shell variables saying how to behave), prints an event, writes into its output
folder and exits with the code it was told to.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.launch.base import LaunchRequest, LaunchResult
from harness.launch.container import split_lines
from harness.launch.docker import DockerBackend, container_name
from harness.launch.gpus import parse_gpus
from harness_contract.frameworks import FRAMEWORKS

docker = pytest.importorskip(
    "docker", reason="docker SDK not installed (pip install -e '.[docker]')"
)

# Real-engine tests: they skip (with the reason) where no engine answers, and the CI's
# docker tier runs them (`pytest -m docker`) after it has started one.
pytestmark = pytest.mark.docker

IMAGE = "harness-test/fake-runner:latest"
FW = FRAMEWORKS["pytorch"]

RUNNER_SH = r"""
# argv: --spec=S --data=D --out=O --run-id=R --runtime=T (entrypoint.runner_command)
# Like the real runners: events on stdout, logs on stderr (Docker keeps each in order,
# not the two relative to each other).
for arg in "$@"; do
  case "$arg" in
    --spec=*) spec="${arg#--spec=}" ;;
    --out=*) out="${arg#--out=}" ;;
  esac
done
. "$spec"
echo '@@harness-event {"event": "start", "framework": "fake"}'
echo "args: $*" >&2
echo written > "$out/touched" || exit 9
if [ -n "$SLEEP" ]; then sleep "$SLEEP"; fi
if [ -n "$ERROR" ]; then echo "@@harness-event {\"event\": \"error\", \"message\": \"$ERROR\"}"; fi
echo "last words before exit $EXIT_CODE" >&2
exit "$EXIT_CODE"
"""

DOCKERFILE = """FROM scratch
COPY rootfs/ /
COPY runner.sh /runner.sh
USER 1000:1000
ENTRYPOINT ["/bin/sh", "/runner.sh"]
"""


def _engine() -> Any:
    try:
        client = docker.from_env()
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        pytest.skip(
            f"no Docker engine answers here ({exc.__class__.__name__})", allow_module_level=True
        )


client = _engine()


def _host_files() -> list[Path]:
    """dash, sleep and the shared libraries they load, as ldd reports them."""
    binaries = [Path(os.path.realpath("/bin/sh")), Path(os.path.realpath("/bin/sleep"))]
    files = set(binaries)
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True)
        for token in out.stdout.split():
            if token.startswith("/"):
                files.add(Path(token))
    return sorted(files)


@pytest.fixture(scope="module")
def fake_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("ldd") is None:
        pytest.skip("ldd is missing, so the host's shell cannot be copied into a test image")
    ctx = tmp_path_factory.mktemp("fake-image")
    rootfs = ctx / "rootfs"
    for f in _host_files():
        for path in {f, Path(os.path.abspath(f))}:  # the loader is named by its /lib64 link
            dest = rootfs / str(path).lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(path), dest)
    (rootfs / "bin").mkdir(exist_ok=True)
    shutil.copy2(os.path.realpath("/bin/sh"), rootfs / "bin" / "sh")
    shutil.copy2(os.path.realpath("/bin/sleep"), rootfs / "bin" / "sleep")
    (ctx / "runner.sh").write_text(RUNNER_SH)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    client.images.build(path=str(ctx), tag=IMAGE, rm=True, forcerm=True)
    yield IMAGE
    client.images.remove(IMAGE, force=True)


@pytest.fixture()
def run_dir(tmp_path: Path) -> Iterator[Path]:
    run = tmp_path / "run-1"
    run.mkdir()
    yield run
    leftovers = client.containers.list(all=True, filters={"label": "harness.run_id=run-1"})
    for c in leftovers:
        c.remove(force=True)
    assert not leftovers, "the backend left a container behind"


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "cifar"
    data.mkdir()
    (data / "batches.meta").write_text("fake")
    data.chmod(0o755)
    return data


def _request(run_dir: Path, data_dir: Path, behaviour: str, timeout_s: float | None = 30):
    spec = run_dir / "spec.json"
    spec.write_text(behaviour + "\n")
    spec.chmod(0o600)  # like the host's atomic writes: the backend must make it readable
    return LaunchRequest(FW, spec, data_dir, run_dir / FW.name, "run-1", timeout_s)


def _launch(image: str, request: LaunchRequest, **kw: Any) -> tuple[LaunchResult, list[dict]]:
    seen: list[dict] = []
    backend = DockerBackend(image_for=lambda fw: image, client=client, **kw)
    return backend.launch(request, seen.append), seen


def test_engine_is_available() -> None:
    assert DockerBackend(client=client).unavailable_reason() is None


def test_no_engine_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    reason = DockerBackend().unavailable_reason()
    assert reason is not None and "unix:///nonexistent/docker.sock" in reason
    assert "--backend local" in reason and "\n" not in reason


def test_exit_0_is_complete_with_log_and_events(fake_image, run_dir, data_dir) -> None:
    result, seen = _launch(fake_image, _request(run_dir, data_dir, "EXIT_CODE=0"))
    assert result.outcome == "complete" and result.exit_code == 0
    assert {"event": "start", "framework": "fake"} in seen
    log = (run_dir / FW.name / "runner.log").read_text()
    assert '@@harness-event {"event": "start"' in log and "last words before exit 0" in log
    # The runner got the contract's arguments, and its folder was writable.
    assert "--spec=/results/spec.json --data=/data --out=/results/pytorch --run-id=run-1" in log
    assert f"--runtime=docker image {fake_image} (sha256:" in log
    assert (run_dir / FW.name / "touched").read_text() == "written\n"


def test_exit_2_with_error_event_is_user_error(fake_image, run_dir, data_dir) -> None:
    behaviour = "EXIT_CODE=2\nERROR='dataset is truncated; re-download it'"
    result, _ = _launch(fake_image, _request(run_dir, data_dir, behaviour))
    assert result.outcome == "user_error" and result.exit_code == 2
    assert result.message == "dataset is truncated; re-download it"


def test_other_exit_is_crash_with_code_and_last_line(fake_image, run_dir, data_dir) -> None:
    result, _ = _launch(fake_image, _request(run_dir, data_dir, "EXIT_CODE=3"))
    assert result.outcome == "crashed" and result.exit_code == 3
    assert "exit code 3" in result.message and "last words before exit 3" in result.message


def test_timeout_stops_and_removes_the_container(fake_image, run_dir, data_dir) -> None:
    started = time.monotonic()
    result, _ = _launch(fake_image, _request(run_dir, data_dir, "SLEEP=60", timeout_s=2))
    assert result.outcome == "timed_out" and "2 s" in result.message
    assert time.monotonic() - started < 20  # SIGTERM ended it; no 30 s kill grace used


def test_ctrl_c_stops_the_container_and_reports_interrupted(fake_image, run_dir, data_dir) -> None:
    request = _request(run_dir, data_dir, "SLEEP=60")
    # A shell starts background jobs with SIGINT ignored (CI scripts run under `&` or
    # nohup): restore Python's handler so the Ctrl-C below arrives as KeyboardInterrupt.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        result, _ = _launch(fake_image, request)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert result.outcome == "interrupted"


def test_missing_image_says_how_to_get_it(run_dir, data_dir) -> None:
    result, _ = _launch("harness-test/absent:0", _request(run_dir, data_dir, "EXIT_CODE=0"))
    assert result.outcome == "user_error"
    assert "harness-test/absent:0" in result.message
    assert "harness images build" in result.message and "harness images pull" in result.message


def test_missing_dataset_is_user_error(fake_image, run_dir, tmp_path) -> None:
    result, _ = _launch(fake_image, _request(run_dir, tmp_path / "nowhere", "EXIT_CODE=0"))
    assert result.outcome == "user_error" and "nowhere" in result.message


def test_gpus_without_nvidia_runtime_names_the_toolkit(fake_image, run_dir, data_dir) -> None:
    if "nvidia" in (client.info().get("Runtimes") or {}):
        pytest.skip("this engine has the NVIDIA runtime")
    request = _request(run_dir, data_dir, "EXIT_CODE=0")
    result, _ = _launch(fake_image, request, gpus=parse_gpus("all"))
    assert result.outcome == "user_error" and "NVIDIA Container Toolkit" in result.message


def test_running_container_is_locked_down(fake_image, run_dir, data_dir) -> None:
    request = _request(run_dir, data_dir, "SLEEP=60", timeout_s=4)
    outcome: list[LaunchResult] = []
    worker = threading.Thread(target=lambda: outcome.append(_launch(fake_image, request)[0]))
    worker.start()
    attrs = _inspect_when_running(container_name("run-1", FW.name))
    worker.join(30)
    assert outcome and outcome[0].outcome == "timed_out"

    assert attrs["Config"]["User"] == "1000:1000"
    assert attrs["Config"]["Labels"]["harness.framework"] == "pytorch"
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["ReadonlyRootfs"] is True and host["Init"] is True
    assert "/tmp" in host["Tmpfs"]
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/data"]["RW"] is False and mounts["/data"]["Source"] == str(data_dir)
    assert mounts["/results"]["RW"] is True and mounts["/results"]["Source"] == str(run_dir)
    env = dict(e.split("=", 1) for e in attrs["Config"]["Env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void" and env["HOME"] == "/tmp"


def _inspect_when_running(name: str) -> dict:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            container = client.containers.get(name)
            if container.status == "running":
                return container.attrs
        except docker.errors.NotFound:
            pass
        time.sleep(0.1)
    raise AssertionError(f"container {name} never ran")


class _OomContainer:
    """Stands in for a container the kernel OOM-killed (a real one needs a memory cap)."""

    status = "exited"
    attrs = {"State": {"OOMKilled": True, "ExitCode": 137}}

    def start(self) -> None: ...
    def reload(self) -> None: ...
    def logs(self, **kw: Any) -> list[bytes]:
        return [b"training epoch 1\n"]


def test_oom_kill_is_a_clear_crash(tmp_path: Path) -> None:
    request = LaunchRequest(FW, tmp_path / "spec.json", tmp_path, tmp_path / FW.name, "r", None)
    with open(tmp_path / "runner.log", "w") as log:
        result = DockerBackend(client=client)._run(_OomContainer(), request, lambda e: None, log)
    assert result.outcome == "crashed" and result.exit_code == 137
    assert "out of memory (OOM)" in result.message and "smaller preset" in result.message


def test_split_lines_rejoins_cut_lines_and_characters() -> None:
    chunks = [b"one\ntw", b"o\n\xc3", b"\xa9t\xc3\xa9\n", b"tail"]
    assert list(split_lines(chunks)) == ["one\n", "two\n", "été\n", "tail\n"]


def test_container_names_are_valid_for_docker() -> None:
    assert container_name("2026-11-05 run/1", "pytorch") == "harness-2026-11-05-run-1-pytorch"
