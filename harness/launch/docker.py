"""Each runner in its framework's image, through the docker SDK (never the docker CLI).

The container sees only what the study needs: the dataset read-only at /data, the run
directory at /results (it writes its own <framework>/ folder there), no network, no
capabilities, a read-only root filesystem and a non-root user. Its stdout carries the
same event lines as a local runner's, so the host follows both the same way.

GPU profiling needs no extra capability: torch.profiler/CUPTI kernel tracing works for
an unprivileged process; only hardware performance counters would want CAP_SYS_ADMIN
(the driver restricts them to admins by default), and the harness does not read them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

import harness_contract
from harness.launch.base import (
    INTERRUPTED,
    Backend,
    EventSink,
    LaunchRequest,
    LaunchResult,
    RunnerOutput,
    classify_exit,
    close_log,
    open_log,
    result,
    timeout_message,
)
from harness.launch.container import (
    LogPump,
    exit_code,
    remove,
    stop,
    wait_exit,
)
from harness.launch.gpus import NO_GPUS, GpuRequest
from harness_contract.entrypoint import runner_command
from harness_contract.errors import HarnessError

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

    from harness.images.build import Lock
    from harness.images.identity import RunImage

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
CONTAINER_DATA = "/data"
CONTAINER_RESULTS = "/results"
ROOT_FALLBACK_USER = (1000, 1000)  # the images' non-root user, used when the host is root
INSTALL_SDK = "pip install -e '.[docker]'"
# How every runner container runs: no network, no capabilities, a read-only root with a
# private /tmp (exec: torch's inductor compiles and loads .so files from it).
LOCKED_DOWN: dict[str, Any] = {
    "network_mode": "none",
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "read_only": True,
    "tmpfs": {"/tmp": "rw,exec,nosuid,nodev,size=1g"},
}
NO_NVIDIA = (
    "--gpus asks for GPUs but this Docker engine cannot hand them out; install the NVIDIA "
    "Container Toolkit (nvidia-ctk runtime configure --runtime=docker, then restart the "
    "engine) or use --gpus none"
)
OOM_MESSAGE = (
    "container was killed for running out of memory (OOM); give Docker more memory or use "
    "a smaller preset"
)


def default_image_for(framework: str) -> str:
    return f"quant-harness/{framework}:{harness_contract.__version__}"


class DockerBackend(Backend):
    name = "docker"

    def __init__(
        self,
        image_for: Callable[[str], str] = default_image_for,
        gpus: GpuRequest = NO_GPUS,
        client: DockerClient | None = None,
        lock: Callable[[], Lock] | None = None,
    ) -> None:
        self.image_for = image_for
        self.gpus = gpus
        self._docker = client
        self._lock = lock  # the image lock (default: $HARNESS_IMAGE_LOCK or images/lock.toml)

    # -- availability -------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        try:
            import docker
        except ImportError:
            return f"the docker Python SDK is not installed; {INSTALL_SDK}"
        try:
            client = self._docker or docker.from_env()
            client.ping()
        except docker.errors.DockerException as exc:
            return _engine_problem(exc)
        self._docker = client
        return None

    def _client(self) -> DockerClient:
        if self._docker is None:
            import docker

            self._docker = docker.from_env()
        return self._docker

    # -- one runner ---------------------------------------------------------------------

    def launch(self, request: LaunchRequest, on_event: EventSink) -> LaunchResult:
        import docker

        request.out_dir.mkdir(parents=True, exist_ok=True)
        log = open_log(request.log_path, "")
        try:
            return self._launch(request, on_event, log)
        except docker.errors.DockerException as exc:
            # The engine went away or refused a call: this framework fails, the other runs.
            with contextlib.suppress(OSError):
                log.write(f"docker error: {exc}\n")
            return result(request, "crashed", None, f"Docker engine error: {_short(exc)}")
        finally:
            close_log(log)

    def _launch(self, request: LaunchRequest, on_event: EventSink, log: IO[str]) -> LaunchResult:
        import docker

        client = self._client()
        fw = request.framework.name
        ref = self.image_for(fw)
        if not request.data_dir.is_dir():
            return result(
                request,
                "user_error",
                None,
                f"dataset directory {request.data_dir} does not exist; pass --data DIR",
            )
        try:
            image = client.images.get(ref)
        except docker.errors.ImageNotFound:
            return result(
                request,
                "user_error",
                None,
                f"image {ref} is not here; build it with `harness images build` "
                f"or pull it with `harness images pull`",
            )
        try:
            run_image = self._run_image(image, fw, ref)
        except HarnessError as exc:  # not the locked image: refused before anything starts
            return result(request, "user_error", None, exc.one_line())
        user = _container_user(request)
        unreadable = _unreadable_by(request.data_dir, user)
        if unreadable:
            return result(
                request,
                "user_error",
                None,
                f"{unreadable} is not readable by the container's user ({user}); make the "
                f"dataset readable: chmod -R a+rX {request.data_dir}",
            )
        kwargs = self._container_kwargs(request, run_image, user)
        command = " ".join(kwargs["command"])
        with contextlib.suppress(OSError):  # a full disk: the runner's own error says so
            log.write(f"$ docker run {run_image.ref} {command} (user {user})\n")
            log.flush()
        try:
            container = client.containers.create(**kwargs)
        except docker.errors.APIError as exc:
            return _api_failure(request, exc, kwargs["name"])
        try:
            return self._run(container, request, on_event, log)
        except docker.errors.APIError as exc:
            return _api_failure(request, exc, kwargs["name"])
        finally:
            remove(container)

    def _run_image(self, image: Any, framework: str, ref: str) -> RunImage:
        """The image by locked digest (or local tag), checked against the lock."""
        from harness.images.build import load_lock
        from harness.images.identity import resolve

        return resolve(image, framework, ref, (self._lock or load_lock)())

    def _container_kwargs(
        self, request: LaunchRequest, run_image: RunImage, user: str
    ) -> dict[str, Any]:
        from docker.types import Mount

        fw = request.framework.name
        # The image's entrypoint runs the runner; its arguments are the contract's own.
        command = _runner_args(
            PurePosixPath(CONTAINER_RESULTS) / request.spec_path.name,
            PurePosixPath(CONTAINER_DATA),
            PurePosixPath(CONTAINER_RESULTS) / request.out_dir.name,
            request.run_id,
            run_image,
            request.allow_untested_versions,
        )
        data = str(request.data_dir.resolve())
        run_dir = str(request.out_dir.parent.resolve())
        return {
            "image": run_image.ref,
            "command": command,
            "name": container_name(request.run_id, fw),
            "labels": {"harness.run_id": request.run_id, "harness.framework": fw},
            "user": user,
            "environment": {**_writable_home_env(), **self.gpus.environment()},
            "mounts": [
                Mount(CONTAINER_DATA, data, type="bind", read_only=True),
                Mount(CONTAINER_RESULTS, run_dir, type="bind", read_only=False),
            ],
            "device_requests": self.gpus.device_requests(),
            **LOCKED_DOWN,
            # PyTorch shares tensors through /dev/shm; Docker's 64 MiB default is too small.
            "shm_size": "1g",
            "working_dir": "/tmp",
            # docker-init as PID 1 forwards `docker stop`'s SIGTERM to the runner.
            "init": True,
            "detach": True,
        }

    def _run(
        self, container: Container, request: LaunchRequest, on_event: EventSink, log: IO[str]
    ) -> LaunchResult:
        container.start()
        output = RunnerOutput(log, on_event)
        pump = LogPump(container, output)
        pump.start()
        try:
            finished = wait_exit(container, request.timeout_s)
        except KeyboardInterrupt:
            stop(container)  # the runner saves its finished phases on SIGTERM
            pump.join()
            return result(request, "interrupted", exit_code(container), INTERRUPTED)
        if not finished:
            stop(container)
            pump.join()
            return result(request, "timed_out", exit_code(container), timeout_message(request))
        pump.join()
        container.reload()
        state = container.attrs["State"]
        if state.get("OOMKilled"):
            return result(request, "crashed", state.get("ExitCode"), OOM_MESSAGE)
        return classify_exit(request, int(state.get("ExitCode", -1)), output)


def container_name(run_id: str, framework: str) -> str:
    # Docker names: [a-zA-Z0-9][a-zA-Z0-9_.-]*
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", f"harness-{run_id}-{framework}")


def _unreadable_by(data_dir: Path, user: str) -> Path | None:
    """The first dataset file the container's uid could not read (checked by mode bits)."""
    uid, gid = (int(part) for part in user.split(":"))
    for path in [data_dir, *data_dir.rglob("*")]:
        st = path.stat()
        need = 0o005 if path.is_dir() else 0o004  # others: r (and x for folders)
        if st.st_uid == uid:
            need <<= 6
        elif st.st_gid == gid:
            need <<= 3
        if st.st_mode & need != need:
            return path
    return None


def _container_user(request: LaunchRequest) -> str:
    """Never root: the host's own ids, or the images' user 1000 when the host is root."""
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        return f"{uid}:{gid}"
    uid, gid = ROOT_FALLBACK_USER
    # The container must write its folder and read spec.json (written 0600 by the host).
    for path in [request.out_dir, *request.out_dir.rglob("*")]:
        os.chown(path, uid, gid)
    run_dir = request.out_dir.parent
    run_dir.chmod(run_dir.stat().st_mode | 0o001)
    if request.spec_path.exists():
        request.spec_path.chmod(request.spec_path.stat().st_mode | 0o004)
    return f"{uid}:{gid}"


def _writable_home_env() -> dict[str, str]:
    # The root filesystem is read-only: point every cache that libraries write at /tmp.
    return {
        "HOME": "/tmp",
        "XDG_CACHE_HOME": "/tmp/.cache",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "KERAS_HOME": "/tmp/.keras",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _runner_args(
    spec: PurePosixPath,
    data: PurePosixPath,
    out: PurePosixPath,
    run_id: str,
    image: RunImage,
    allow_untested_versions: bool = False,
) -> list[str]:
    runtime = f"docker image {image.ref} ({image.identity.id})"
    return runner_command(spec, data, out, run_id, runtime, image.identity, allow_untested_versions)


def _api_failure(request: LaunchRequest, exc: Exception, name: str) -> LaunchResult:
    text = str(exc)
    if "could not select device driver" in text:
        return result(request, "user_error", None, NO_NVIDIA)
    if getattr(getattr(exc, "response", None), "status_code", None) == 409:
        return result(
            request,
            "user_error",
            None,
            f"a container named {name} already exists (left by an earlier attempt?); "
            f"remove it with `docker rm -f {name}` and resume",
        )
    return result(request, "crashed", None, f"Docker refused the container: {_short(exc)}")


def engine_address() -> str:
    """Where the Docker SDK reaches the engine: $DOCKER_HOST, else this host's socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def _engine_problem(exc: BaseException) -> str:
    where = engine_address()
    if _caused_by(exc, PermissionError) or "Permission denied" in str(exc):
        return (
            f"no permission to use the Docker engine at {where}; add your user to the "
            f"docker group (sudo usermod -aG docker $USER, then log in again) or use sudo"
        )
    return f"no Docker engine answers at {where}; start one (e.g. `dockerd`) or use --backend local"


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kind) or any(isinstance(a, kind) for a in exc.args):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
