"""Runner images: the lock file and Dockerfiles agree, the doctor copes without Docker,
and (where an engine and the local CPU base exist) a built image runs as non-root."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from harness import doctor
from harness.images import build as images
from harness.images import publish as registry
from harness.launch.docker import LOCKED_DOWN
from harness_contract import __version__
from harness_contract.errors import HarnessError

ROOT = Path(__file__).resolve().parents[1]


def _dockerfile_arg(framework: str, name: str, root: Path = ROOT) -> str:
    text = (root / "images" / framework / "Dockerfile").read_text()
    match = re.search(rf"^ARG {name}=(.*)$", text, re.MULTILINE)
    assert match, f"images/{framework}/Dockerfile has no ARG {name} default"
    return match.group(1).strip().strip('"')


def _requirements(framework: str) -> dict[str, str]:
    lines = (ROOT / "images" / framework / "requirements.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip(): version.strip() for name, version in pins}


def assert_dockerfile_agrees_with_lock(framework: str, root: Path = ROOT) -> None:
    """The Dockerfile's BASE_IMAGE and label defaults are the lock's (tests/test_image_lock.py
    applies the same rules to rewritten copies)."""
    entry = images.load_lock(root / "images" / "lock.toml").frameworks[framework]
    assert _dockerfile_arg(framework, "BASE_IMAGE", root) == entry.base_ref
    assert _dockerfile_arg(framework, "FRAMEWORK_VERSIONS", root) == entry.versions_label
    assert entry.base_digest == "" or re.fullmatch(r"sha256:[0-9a-f]{64}", entry.base_digest)


@pytest.mark.parametrize("framework", images.FRAMEWORKS)
def test_dockerfile_base_default_is_the_locked_base(framework: str) -> None:
    assert_dockerfile_agrees_with_lock(framework)


@pytest.mark.parametrize("framework", images.FRAMEWORKS)
def test_image_pins_and_version_label_match_the_lock(framework: str) -> None:
    lock = images.load_lock()
    entry = lock.frameworks[framework]
    assert _requirements(framework) == {**entry.packages, **lock.common_packages}
    assert _dockerfile_arg(framework, "FRAMEWORK_VERSIONS") == entry.versions_label


def test_pinned_digests_are_well_formed_or_absent() -> None:
    for entry in images.load_lock().frameworks.values():
        assert entry.base_digest == "" or re.fullmatch(r"sha256:[0-9a-f]{64}", entry.base_digest)


def test_dockerignore_keeps_local_state_out_and_image_sources_in() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "results", "data", ".git"} <= patterns
    assert not {"shared", "images", "shared/harness_contract"} & patterns


def test_image_ref_names_the_framework_and_the_harness_version() -> None:
    assert images.image_ref("tensorflow") == f"quant-harness/tensorflow:{__version__}"
    with pytest.raises(HarnessError, match="unknown framework 'jax'"):
        images.image_ref("jax")


def test_pull_without_a_published_digest_says_so_in_one_line() -> None:
    if all(entry.published_digest for entry in images.load_lock().frameworks.values()):
        pytest.skip("both published digests are recorded")
    with pytest.raises(HarnessError, match="no published image digest") as caught:
        registry.pull(images.FRAMEWORKS, progress=lambda line: None)
    assert "harness images build" in caught.value.one_line()


def test_doctor_without_an_engine_reports_it_with_a_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    started = time.monotonic()
    found = {check.name: check for check in doctor.checks()}
    elapsed = time.monotonic() - started
    engine = found["docker engine"]
    assert engine.ok is False
    assert "nonexistent.sock" in engine.detail and engine.fix
    # Checks that need the engine say they do not apply instead of failing or hanging.
    assert found["harness images"].ok is None
    assert found["nvidia container runtime"].ok is None
    assert found["python"].ok is True
    assert elapsed < 5, f"doctor took {elapsed:.1f} s without an engine"


def test_doctor_names_a_broken_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "missing"))
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    dataset = next(check for check in doctor.checks() if check.name == "dataset")
    assert dataset.ok is False and "does not exist" in dataset.detail and dataset.fix


def test_doctor_accepts_a_valid_dataset(
    monkeypatch: pytest.MonkeyPatch, synthetic_data: Path
) -> None:
    monkeypatch.setenv("HARNESS_DATA", str(synthetic_data))
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    dataset = next(check for check in doctor.checks() if check.name == "dataset")
    assert dataset.ok is True and dataset.detail == str(synthetic_data)


# -- real engine tier ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cpu_base_engine():
    """An engine holding the local CPU base; building that base is the script's job."""
    try:
        client = images.docker_client(timeout=5)
    except HarnessError as exc:
        pytest.skip(f"no Docker engine: {exc.one_line()}")
    from docker.errors import ImageNotFound

    base = images.load_lock().cpu_base
    try:
        client.images.get(base)
    except ImageNotFound:
        pytest.skip(f"CPU base {base} absent: run scripts/build-cpu-base.sh")
    return client, base


def _built(cpu_base_engine, framework: str) -> str:  # noqa: ANN001
    """The framework's image built on the CPU base (from cache when it is already built)."""
    _, base = cpu_base_engine
    (ref,) = images.build([framework], base=base, progress=lambda line: None)
    return ref


@pytest.fixture(scope="module")
def tensorflow_image(cpu_base_engine) -> str:
    return _built(cpu_base_engine, "tensorflow")


@pytest.mark.slow
@pytest.mark.docker
def test_tensorflow_image_runs_as_non_root_with_its_labels(cpu_base_engine, tensorflow_image):
    client, _ = cpu_base_engine
    config = client.images.get(tensorflow_image).attrs["Config"]
    assert config["User"] == "1000:1000"
    assert config["Entrypoint"] == ["python3", "-m", "tf_runner"]
    assert config["WorkingDir"] == "/home/harness"
    assert "TF_USE_LEGACY_KERAS=1" in config["Env"]
    labels = config["Labels"]
    for key in ("source", "version", "title", "description", "revision"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"missing OCI label {key}"
    assert labels["org.opencontainers.image.version"] == __version__
    expected = images.load_lock().frameworks["tensorflow"].versions_label
    assert labels[images.VERSIONS_LABEL] == expected
    assert labels[registry.BASE_LABEL] == images.load_lock().cpu_base  # push reads it


@pytest.mark.slow
@pytest.mark.docker
def test_tensorflow_image_prints_the_runner_usage_without_network(
    cpu_base_engine, tensorflow_image
):
    client, _ = cpu_base_engine
    output = client.containers.run(
        tensorflow_image, ["--help"], network_mode="none", remove=True
    ).decode()
    assert "usage: python -m tf_runner" in output and "--spec" in output


@pytest.fixture(scope="module")
def pytorch_image(cpu_base_engine) -> str:
    return _built(cpu_base_engine, "pytorch")


@pytest.mark.slow
@pytest.mark.docker
def test_pytorch_image_compiles_with_inductor_as_its_user_without_network(
    cpu_base_engine, pytorch_image
):
    """The Inductor rungs compile C++ in the container: a compiler alone is not enough,
    Inductor's wrapper also includes Python.h (a bookworm base lacked it and every Inductor
    rung failed with CppCompileError)."""
    client, _ = cpu_base_engine
    script = (
        "import torch\n"
        "from torch_runner import inductor\n"
        "inductor.cold_cache(); inductor.require_compiler()\n"
        "out = torch.compile(lambda x: x.sin() + 1)(torch.zeros(3))\n"
        "print('compiled', out.tolist())\n"
    )
    output = client.containers.run(
        pytorch_image,
        ["-c", script],
        entrypoint="python3",
        **LOCKED_DOWN,  # as a study runs
        environment={"HOME": "/tmp"},
        working_dir="/tmp",
        remove=True,
    ).decode()
    assert "compiled [1.0, 1.0, 1.0]" in output


@pytest.mark.parametrize(
    ("argv", "worker"),
    [
        (["images", "build", "--base", "some/base:tag"], (images, "build")),
        (["images", "pull"], (registry, "pull")),
        (["images", "push"], (registry, "push")),
    ],
)
def test_each_images_command_reaches_its_worker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv, worker
) -> None:
    """The command line is wired to the function that does the work (the package move
    once bound `harness images build` to the module instead: a TypeError on every build)."""
    from harness.cli.main import main

    calls = []
    module, name = worker
    monkeypatch.setattr(module, name, lambda frameworks, **kw: calls.append(frameworks) or [])
    assert main(argv) == 0, capsys.readouterr().err
    assert calls == [["pytorch", "tensorflow"]]
