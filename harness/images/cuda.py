"""The CUDA variant of the runner images: built FROM the local Debian base with the
frameworks' own CUDA wheels, every version and hash locked in
``images/<framework>/requirements-cuda.lock`` (``harness images build --cuda``).

A build has two steps. ``Dockerfile.cuda`` installs the locked wheels; then the built image
runs ``cuda_probe.py`` (no GPU, no network, non-root) and reports its CUDA build, its cuDNN
and which CUDA runtime libraries load. A failed probe fails the build; a good one becomes
the image's CUDA labels through a second, metadata-only build ``FROM`` the first, so the
labels are read from the installed wheels and never typed by hand.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.images import build as images
from harness.images.build import Progress
from harness_contract import __version__
from harness_contract.errors import HarnessError

CUDA_LABEL = "io.quant-harness.cuda"  # the CUDA runtime wheel's version
CUDNN_LABEL = "io.quant-harness.cudnn"  # the cuDNN wheel's version
CUDA_BUILD_LABEL = "io.quant-harness.cuda-build"  # what the framework says it was built with
PROBE = Path(__file__).with_name("cuda_probe.py")
PROBE_TIMEOUT_S = 300
LOCK_COMMAND = (
    "uv pip compile --no-config --generate-hashes --python-version 3.11 "
    "--python-platform x86_64-manylinux_2_28 images/{fw}/requirements-cuda.in "
    "-o images/{fw}/requirements-cuda.lock"
)
# `name==version \` at the start of a lock line (the hashes follow on their own lines).
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


@dataclass(frozen=True)
class CudaFacts:
    """What a CUDA image reports about itself (cuda_probe.py's JSON)."""

    framework: str
    framework_version: str
    built_with_cuda: bool
    cuda_build: str | None
    cudnn_build: str | None
    gpu_visible: bool
    wheels: dict[str, str] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_output(cls, output: str, framework: str) -> CudaFacts:
        """Parse the probe's last output line; anything else is a one-line error."""
        lines = [line for line in output.strip().splitlines() if line.startswith("{")]
        try:
            data = json.loads(lines[-1])
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except (IndexError, KeyError, TypeError, json.JSONDecodeError) as exc:
            tail = (output.strip().splitlines() or ["no output"])[-1][:200]
            raise HarnessError(
                f"the {framework} CUDA image's probe printed no facts ({tail})",
                "read the build log above and rebuild with `harness images build --cuda`",
            ) from exc

    @property
    def cuda(self) -> str:
        """The CUDA runtime wheel's version (nvidia-cuda-runtime[-cuXX])."""
        return _wheel_version(self.wheels, "nvidia-cuda-runtime")

    @property
    def cudnn(self) -> str:
        return _wheel_version(self.wheels, "nvidia-cudnn")

    def problems(self) -> list[str]:
        """Why this is not a working CUDA image (empty when it is)."""
        found = []
        if not self.built_with_cuda:
            found.append(f"{self.framework} {self.framework_version} is not a CUDA build")
        if not self.cuda or not self.cudnn:
            found.append("no nvidia CUDA runtime or cuDNN wheel is installed")
        if not self.cudnn_build:
            found.append(f"{self.framework} reports no cuDNN")
        found += [f"{stem}: {where}" for stem, where in self.libraries.items() if "error" in where]
        return found

    def labels(self) -> dict[str, str]:
        return {
            CUDA_LABEL: self.cuda,
            CUDNN_LABEL: self.cudnn,
            CUDA_BUILD_LABEL: f"CUDA {self.cuda_build}, cuDNN {self.cudnn_build}",
        }

    def summary(self) -> str:
        loaded = ", ".join(Path(p).name for p in self.libraries.values())
        return (
            f"{self.framework} {self.framework_version}: built with CUDA {self.cuda_build}, "
            f"cuDNN {self.cudnn_build}; wheels CUDA {self.cuda}, cuDNN {self.cudnn}; "
            f"loaded {loaded}; GPU visible: {'yes' if self.gpu_visible else 'no'}"
        )


@dataclass(frozen=True)
class BuiltCuda:
    ref: str
    image_id: str
    facts: CudaFacts


def lock_path(framework: str) -> Path:
    return images.REPO_ROOT / "images" / framework / "requirements-cuda.lock"


def locked_pins(framework: str, path: Path | None = None) -> dict[str, str]:
    """name -> version of every package in the framework's CUDA hash lock."""
    path = path or lock_path(framework)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(
            f"the CUDA wheel lock {path} cannot be read ({exc.strerror})",
            f"generate it: {LOCK_COMMAND.format(fw=framework)}",
        ) from exc
    return {re.sub(r"[-_.]+", "-", name).lower(): v for name, v in _PIN.findall(text)}


def build_cuda(
    frameworks: list[str], base: str | None = None, progress: Progress = print
) -> list[BuiltCuda]:
    """Build, probe and label each framework's CUDA image; return what was built."""
    lock = images.load_lock()
    for name in frameworks:  # fail on a missing lock before any slow work
        locked_pins(name)
    client = images.docker_client()
    built = []
    for name in frameworks:
        ref = images.image_ref(name, variant="cuda")
        base_image = base or lock.cpu_base
        progress(f"building {ref} from {base_image} with the wheels of {lock_path(name).name}")
        # The first step's image has a name of its own until labelled, so `ref` never
        # names an unlabelled image, not even between the two steps.
        unlabelled = f"{ref}-unlabelled"
        image_id = _build(client, name, unlabelled, base_image, progress)
        facts = probe(client, image_id, name)
        problems = facts.problems() + unlocked_wheels(facts, locked_pins(name))
        if problems:
            raise HarnessError(
                f"{ref} is not a working CUDA image: {'; '.join(problems)}",
                f"inspect it as {unlabelled}, check images/{name}/requirements-cuda.lock "
                "and rebuild",
            )
        progress(f"probe: {facts.summary()}")
        image_id = _label(client, image_id, ref, facts.labels(), progress)
        client.images.remove(unlabelled)  # only the name: the labelled image is built on it
        built.append(BuiltCuda(ref, image_id, facts))
    return built


def probe(client: Any, image: str, framework: str) -> CudaFacts:
    """Run cuda_probe.py in ``image`` as a study runs (non-root, no network, read-only)."""
    from requests.exceptions import RequestException

    from harness.launch.docker import LOCKED_DOWN

    container = client.containers.create(
        image,
        ["-c", PROBE.read_text(encoding="utf-8"), framework],
        entrypoint="python3",
        environment={"HOME": "/tmp", "TF_CPP_MIN_LOG_LEVEL": "2"},
        working_dir="/tmp",
        **LOCKED_DOWN,
    )
    try:
        container.start()
        try:  # importing a framework takes seconds, longer on a loaded machine
            status = container.wait(timeout=PROBE_TIMEOUT_S)
        except RequestException as exc:  # the read timeout
            raise HarnessError(
                f"the {framework} CUDA image's probe did not finish in {PROBE_TIMEOUT_S} s",
                "retry on a less loaded machine",
            ) from exc
        output = container.logs(stdout=True, stderr=False).decode(errors="replace")
        if status.get("StatusCode") != 0:
            errors = container.logs(stdout=False, stderr=True).decode(errors="replace")
            last = (errors.strip().splitlines() or ["no output"])[-1][:200]
            raise HarnessError(
                f"the {framework} CUDA image's probe failed ({last})",
                "read the build log above and rebuild with `harness images build --cuda`",
            )
    finally:
        container.remove(force=True)
    return CudaFacts.from_output(output, framework)


def _build(client: Any, framework: str, ref: str, base: str, progress: Progress) -> str:
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f"harness-build-{framework}-cuda-") as tmp:
        context = images._assemble_context(Path(tmp), framework)
        chunks = client.api.build(
            path=str(context),
            dockerfile=f"images/{framework}/Dockerfile.cuda",
            buildargs={
                "VERSION": __version__,
                "REVISION": images._git_revision(),
                "BASE_IMAGE": base,
            },
            tag=ref,
            rm=True,
            forcerm=True,
            decode=True,
        )
        try:
            images._follow(chunks, progress, f"building {ref}")
        except HarnessError as exc:  # the generic fix names --base: not the CUDA build's
            raise HarnessError(
                exc.problem,
                f"read the build log above; a pip error names the package to re-pin in "
                f"images/{framework}/requirements-cuda.in, then regenerate the lock: "
                f"{LOCK_COMMAND.format(fw=framework)}",
            ) from exc
    return client.images.get(ref).id


def _label(client: Any, image_id: str, ref: str, labels: dict[str, str], progress: Progress) -> str:
    """A metadata-only build FROM ``image_id`` that adds ``labels``, tagged ``ref``."""
    quoted = " ".join(f"{key}={json.dumps(value)}" for key, value in sorted(labels.items()))
    dockerfile = f"FROM {image_id}\nLABEL {quoted}\n"
    chunks = client.api.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True, forcerm=True, decode=True
    )
    images._follow(chunks, progress, f"building {ref}")
    return client.images.get(ref).id


def unlocked_wheels(facts: CudaFacts, pins: dict[str, str]) -> list[str]:
    """nvidia wheels in the image at a version other than the hash lock's (none expected)."""
    return [
        f"{name} {version} is installed but the lock pins {pins.get(name, 'nothing')}"
        for name, version in facts.wheels.items()
        if pins.get(name) != version
    ]


def _wheel_version(wheels: dict[str, str], prefix: str) -> str:
    """The version of the one wheel named ``prefix`` or ``prefix-cuXX``, else ""."""
    found = [v for name, v in wheels.items() if re.fullmatch(rf"{prefix}(-cu\d+)?", name)]
    return found[0] if len(found) == 1 else ""
