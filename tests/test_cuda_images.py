"""The CUDA image variant without Docker: its hash locks and Dockerfiles agree with the image
lock, the probe's report becomes labels or a named problem, a build is recorded in a lock
copy and nothing else changes, the CUDA tag is chosen where asked, and the CLI wiring."""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.images import build as images
from harness.images import cuda
from harness.images import identity as image_identity
from harness.images.cuda_lock import record_cuda
from harness_contract import __version__
from harness_contract.errors import HarnessError
from tests.cli_output import one_error_line
from tests.test_images import ROOT

IMAGE_ID = "sha256:" + "c3" * 32
# What cuda_probe.py printed in the PyTorch CUDA image (abridged to the parts read here).
PYTORCH_FACTS = {
    "framework": "pytorch",
    "framework_version": "2.13.0",
    "built_with_cuda": True,
    "cuda_build": "13.0",
    "cudnn_build": "9.20.0",
    "gpu_visible": False,
    "wheels": {"nvidia-cuda-runtime": "13.0.96", "nvidia-cudnn-cu13": "9.20.0.48"},
    "libraries": {
        "libcudart.so": "/opt/venv/lib/python3.11/site-packages/nvidia/cu13/lib/libcudart.so.13",
        "libcudnn.so": "/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn.so.9",
        "libcublas.so": "/opt/venv/lib/python3.11/site-packages/nvidia/cu13/lib/libcublas.so.13",
    },
}


def _facts(**changes: object) -> cuda.CudaFacts:
    return cuda.CudaFacts.from_output(
        "some log line\n" + json.dumps({**PYTORCH_FACTS, **changes}), "pytorch"
    )


def _lock_entries(framework: str) -> dict[str, list[str]]:
    """Each requirement of the framework's CUDA lock -> its --hash values."""
    text = (ROOT / "images" / framework / "requirements-cuda.lock").read_text()
    entries: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if re.match(r"^[A-Za-z0-9]", line):
            current = line.split()[0]
            entries[current] = []
        elif current and "--hash=" in line:
            entries[current].append(line.strip().removesuffix("\\").strip())
    return entries


# -- the hash locks and Dockerfiles ----------------------------------------------------------


@pytest.mark.parametrize("framework", images.FRAMEWORKS)
def test_cuda_lock_pins_every_package_with_a_sha256(framework: str) -> None:
    entries = _lock_entries(framework)
    assert len(entries) > 20, "the lock holds the whole dependency tree"
    for requirement, hashes in entries.items():
        assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*==[^=\s]+", requirement), requirement
        assert hashes, f"{requirement} has no hash: pip --require-hashes would refuse it"
        assert all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes), hashes


@pytest.mark.parametrize("framework", images.FRAMEWORKS)
def test_cuda_lock_holds_the_cpu_images_pins_and_the_cuda_runtime(framework: str) -> None:
    lock = images.load_lock()
    pins = cuda.locked_pins(framework)
    wanted = {**lock.frameworks[framework].packages, **lock.common_packages}
    assert {name: pins.get(name) for name in wanted} == wanted
    if framework == "pytorch":  # the edge rung's pin, as the CPU image installs it
        edge = (ROOT / "images" / "pytorch" / "requirements-edge.txt").read_text()
        assert f"executorch=={pins['executorch']}" in edge
    # The CUDA parts the labels name: the runtime and cuDNN wheels, exactly one of each.
    facts = cuda.CudaFacts("x", "1", True, "1", "1", False, wheels=pins)
    assert re.fullmatch(r"1[23]\.\d+\.\d+", facts.cuda), pins
    assert re.fullmatch(r"9\.\d+\.\d+\.\d+", facts.cudnn), pins
    assert any(name.startswith("nvidia-cublas") for name in pins)


@pytest.mark.parametrize("framework", images.FRAMEWORKS)
def test_cuda_lock_was_made_by_the_documented_command(framework: str) -> None:
    """The command in the lock's header is the one images/lock.toml and README document,
    for the image's platform (the host's pip would pick its local CPU torch)."""
    text = (ROOT / "images" / framework / "requirements-cuda.lock").read_text()
    command = cuda.LOCK_COMMAND.format(fw=framework)
    assert command in text.splitlines()[1]
    assert "--python-platform x86_64-manylinux_2_28" in command
    lock_comment = (ROOT / "images" / "lock.toml").read_text()
    assert "--python-platform x86_64-manylinux_2_28" in lock_comment


def _dockerfile(framework: str) -> str:
    return (ROOT / "images" / framework / "Dockerfile.cuda").read_text()


def _arg(text: str, name: str) -> str:
    match = re.search(rf"^ARG {name}=(.*)$", text, re.MULTILINE)
    assert match, f"no ARG {name} default"
    return match.group(1).strip().strip('"')


@pytest.mark.parametrize("framework", images.FRAMEWORKS)
def test_cuda_dockerfile_installs_the_hash_lock_on_the_cpu_base(framework: str) -> None:
    lock = images.load_lock()
    text = _dockerfile(framework)
    assert _arg(text, "BASE_IMAGE") == lock.cpu_base
    assert _arg(text, "FRAMEWORK_VERSIONS") == lock.frameworks[framework].versions_label
    assert "--require-hashes" in text and "requirements-cuda.lock" in text
    assert "requirements.txt" not in text  # nothing unhashed is installed
    cpu = (ROOT / "images" / framework / "Dockerfile").read_text()
    for line in ("USER 1000:1000", "WORKDIR /home/harness"):
        assert line in text
    entrypoint = re.search(r"^ENTRYPOINT .*$", cpu, re.MULTILINE)
    assert entrypoint and entrypoint.group(0) in text


# -- image refs ------------------------------------------------------------------------------


def test_the_cuda_variant_is_tagged_apart_and_chosen_by_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (
        images.image_ref("pytorch", variant="cuda") == f"quant-harness/pytorch:{__version__}-cuda"
    )
    monkeypatch.setenv(images.VARIANT_ENV, "cuda")
    assert images.image_ref("tensorflow") == f"quant-harness/tensorflow:{__version__}-cuda"
    # Builds, pushes and pulls of the default images name them whatever the variant says.
    assert images.image_ref("tensorflow", variant="") == f"quant-harness/tensorflow:{__version__}"
    monkeypatch.setenv(images.VARIANT_ENV, "gpu")
    with pytest.raises(HarnessError, match="unknown image variant 'gpu'") as caught:
        images.image_ref("pytorch")
    assert "HARNESS_IMAGE_VARIANT" in caught.value.one_line()


class _Image:
    id = IMAGE_ID
    attrs: dict = {"RepoDigests": []}


def test_a_local_cuda_image_is_not_held_to_the_published_digest() -> None:
    """A release's lock names the published default image; the CUDA build made here runs
    by its local tag, while the default image is still refused when it is not the locked one."""
    lock = images.load_lock()
    entry = dataclasses.replace(lock.frameworks["pytorch"], published_digest="sha256:" + "d4" * 32)
    locked = dataclasses.replace(lock, frameworks={**lock.frameworks, "pytorch": entry})
    ref = images.image_ref("pytorch", variant="cuda")
    run = image_identity.resolve(_Image(), "pytorch", ref, locked)
    assert run.ref == ref and run.identity.tag == f"{__version__}-cuda"
    with pytest.raises(HarnessError, match="is not the pytorch image locked"):
        image_identity.resolve(_Image(), "pytorch", images.image_ref("pytorch", variant=""), locked)


# -- the probe's report ----------------------------------------------------------------------


def test_probe_facts_become_the_cuda_and_cudnn_labels() -> None:
    facts = _facts()
    assert facts.problems() == []
    assert facts.labels() == {
        cuda.CUDA_LABEL: "13.0.96",
        cuda.CUDNN_LABEL: "9.20.0.48",
        cuda.CUDA_BUILD_LABEL: "CUDA 13.0, cuDNN 9.20.0",
    }
    assert "libcudart.so.13" in facts.summary() and "GPU visible: no" in facts.summary()


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"built_with_cuda": False, "cuda_build": None}, "pytorch 2.13.0 is not a CUDA build"),
        ({"cudnn_build": None}, "reports no cuDNN"),
        ({"wheels": {"nvidia-cuda-runtime": "13.0.96"}}, "no nvidia CUDA runtime or cuDNN"),
        (
            {"libraries": {"libcudnn.so": "error: libcudnn.so.9: cannot open shared object"}},
            "libcudnn.so: error: libcudnn.so.9",
        ),
    ],
)
def test_an_image_that_is_not_a_working_cuda_image_is_named(changes: dict, named: str) -> None:
    problems = _facts(**changes).problems()
    assert any(named in line for line in problems), problems


def test_probe_output_without_facts_is_one_line_with_the_fix() -> None:
    with pytest.raises(HarnessError, match="probe printed no facts") as caught:
        cuda.CudaFacts.from_output("ImportError: libcudart.so.13: cannot open\n", "pytorch")
    line = caught.value.one_line()
    assert "libcudart.so.13" in line and "harness images build --cuda" in line


def test_a_wheel_installed_at_another_version_than_locked_is_named() -> None:
    pins = {"nvidia-cuda-runtime": "13.0.96", "nvidia-cudnn-cu13": "9.1.0.70"}
    assert cuda.unlocked_wheels(_facts(), pins) == [
        "nvidia-cudnn-cu13 9.20.0.48 is installed but the lock pins 9.1.0.70"
    ]
    assert cuda.unlocked_wheels(_facts(), cuda.locked_pins("pytorch")) == []


def test_the_probe_runs_and_names_a_cpu_torch_as_no_cuda_build() -> None:
    """The probe script itself, on the host's CPU torch: it runs, prints its JSON, and the
    facts say exactly why this is not a CUDA image."""
    pytest.importorskip("torch")
    done = subprocess.run(
        [sys.executable, "-c", cuda.PROBE.read_text(), "pytorch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    facts = cuda.CudaFacts.from_output(done.stdout, "pytorch")
    if facts.built_with_cuda:
        pytest.skip("this host's torch is a CUDA build")
    assert facts.framework == "pytorch" and facts.cuda_build is None
    assert any("is not a CUDA build" in line for line in facts.problems())


# -- recording a build in the image lock -----------------------------------------------------


@pytest.fixture
def lock_copy(tmp_path: Path) -> Path:
    path = tmp_path / "lock.toml"
    shutil.copy2(ROOT / "images" / "lock.toml", path)
    return path


def test_recording_a_cuda_build_changes_only_its_table(lock_copy: Path) -> None:
    before = lock_copy.read_text().splitlines()
    record_cuda(lock_copy, "tensorflow", IMAGE_ID, "12.9.79", "9.28.0.42")
    after = lock_copy.read_text().splitlines()
    lock = images.load_lock(lock_copy)
    assert lock.frameworks["tensorflow"].cuda == {
        "image_id": IMAGE_ID,
        "cuda": "12.9.79",
        "cudnn": "9.28.0.42",
    }
    assert (
        lock.frameworks["pytorch"]
        == images.load_lock(ROOT / "images" / "lock.toml").frameworks["pytorch"]
    )
    changed = [line[2:] for line in difflib.ndiff(before, after) if line.startswith("+ ")]
    assert changed == [
        f'image_id = "{IMAGE_ID}"',
        'cuda = "12.9.79"',
        'cudnn = "9.28.0.42"',
    ]
    record_cuda(lock_copy, "tensorflow", IMAGE_ID, "12.9.79", "9.28.0.42")
    assert lock_copy.read_text().splitlines() == after  # the same build again: no churn


def test_a_lock_without_a_cuda_table_gets_one(lock_copy: Path) -> None:
    text = lock_copy.read_text()
    table = text[text.index("[pytorch.cuda]") : text.index("[tensorflow]")]
    lock_copy.write_text(text.replace(table, ""))
    assert images.load_lock(lock_copy).frameworks["pytorch"].cuda == {}
    record_cuda(lock_copy, "pytorch", IMAGE_ID, "13.0.96", "9.20.0.48")
    assert images.load_lock(lock_copy).frameworks["pytorch"].cuda["cudnn"] == "9.20.0.48"


@pytest.mark.parametrize(
    ("image_id", "cudnn"), [("c3" * 32, "9.20.0.48"), ("sha256:xyz", "9.20.0.48"), (IMAGE_ID, "")]
)
def test_a_bad_cuda_record_is_refused_and_the_lock_kept(
    lock_copy: Path, image_id: str, cudnn: str
) -> None:
    before = lock_copy.read_bytes()
    with pytest.raises(HarnessError, match="refusing to record") as caught:
        record_cuda(lock_copy, "pytorch", image_id, "13.0.96", cudnn)
    assert "left unchanged" in caught.value.one_line()
    assert lock_copy.read_bytes() == before


# -- the command line ------------------------------------------------------------------------


def test_images_build_cuda_reaches_its_worker_and_records_in_the_lock_copy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lock_copy: Path
) -> None:
    calls = []

    def fake_build(frameworks, base=None, progress=print):  # noqa: ANN001, ANN202
        calls.append((frameworks, base))
        return [
            cuda.BuiltCuda(images.image_ref(fw, variant="cuda"), IMAGE_ID, _facts(framework=fw))
            for fw in frameworks
        ]

    monkeypatch.setattr(cuda, "build_cuda", fake_build)
    monkeypatch.setenv(images.LOCK_ENV, str(lock_copy))
    assert main(["images", "build", "--cuda", "--record", "pytorch"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert calls == [(["pytorch"], None)]
    assert f"built quant-harness/pytorch:{__version__}-cuda ({IMAGE_ID};" in out
    assert images.load_lock(lock_copy).frameworks["pytorch"].cuda["image_id"] == IMAGE_ID
    tracked = images.load_lock(ROOT / "images" / "lock.toml")
    assert tracked.frameworks["pytorch"].cuda["image_id"] == ""  # the tracked lock: untouched


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["images", "build", "--record"], "--record applies to --cuda builds only"),
        (["images", "build", "--cuda", "--wheels", "/tmp"], "--wheels cannot be used with --cuda"),
    ],
)
def test_images_build_refuses_option_mixes_in_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    assert main(argv) != 0
    assert named in one_error_line(capsys.readouterr().err)


def test_a_missing_cuda_lock_names_the_command_that_makes_it(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="cannot be read") as caught:
        cuda.locked_pins("pytorch", tmp_path / "requirements-cuda.lock")
    assert "uv pip compile --no-config --generate-hashes" in caught.value.one_line()
