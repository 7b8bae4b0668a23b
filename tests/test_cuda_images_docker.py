"""The built CUDA images, in a real engine and without a GPU: each reports a CUDA build and
its cuDNN, loads the CUDA runtime libraries of its wheels, carries labels that say so and
runs as the non-root user; PyTorch's Inductor still compiles for the CPU.

Building the CUDA images takes minutes and several GB, so these tests never build: they
skip (with the command) when the images are absent; scripts/ci-cuda-tier.sh builds them
first and sets HARNESS_REQUIRE_CUDA_IMAGES=1, which turns that skip into a failure.
"""

from __future__ import annotations

import os

import pytest

from harness.images import build as images
from harness.images import cuda
from harness.launch.docker import LOCKED_DOWN
from harness_contract.errors import HarnessError

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _absent(reason: str) -> None:
    if os.environ.get("HARNESS_REQUIRE_CUDA_IMAGES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def engine():  # noqa: ANN201
    try:
        return images.docker_client(timeout=120)  # a loaded machine starts slowly
    except HarnessError as exc:
        _absent(f"no Docker engine: {exc.one_line()}")


def _image(engine, framework: str):  # noqa: ANN001, ANN202
    from docker.errors import ImageNotFound

    ref = images.image_ref(framework, variant="cuda")
    try:
        return engine.images.get(ref)
    except ImageNotFound:
        _absent(f"{ref} absent: build it with `harness images build --cuda {framework}`")


@pytest.mark.parametrize("framework", images.FRAMEWORKS)
def test_cuda_image_reports_its_cuda_build_and_loads_the_runtime(engine, framework: str) -> None:
    image = _image(engine, framework)
    facts = cuda.probe(engine, image.id, framework)
    assert facts.problems() == [], facts
    assert facts.built_with_cuda and facts.cuda_build and facts.cudnn_build
    assert set(facts.libraries) == {"libcudart.so", "libcudnn.so", "libcublas.so"}
    assert not facts.gpu_visible  # no --gpus: the container sees no device, and says so
    # Exactly the locked wheels, and labels that state what the image reports.
    assert cuda.unlocked_wheels(facts, cuda.locked_pins(framework)) == []
    labels = image.labels or {}
    assert {key: labels.get(key) for key in facts.labels()} == facts.labels()
    assert labels[images.VERSIONS_LABEL] == images.load_lock().frameworks[framework].versions_label
    assert image.attrs["Config"]["User"] == "1000:1000"


def test_pytorch_cuda_image_compiles_with_inductor_on_the_cpu(engine) -> None:  # noqa: ANN001
    """A CUDA build of torch without a GPU still compiles the CPU rungs (g++, Python.h)."""
    image = _image(engine, "pytorch")
    script = (
        "import torch\n"
        "from torch_runner import inductor\n"
        "inductor.cold_cache(); inductor.require_compiler()\n"
        "out = torch.compile(lambda x: x.sin() + 1)(torch.zeros(3))\n"
        "print('compiled', out.tolist(), torch.version.cuda)\n"
    )
    output = engine.containers.run(
        image.id,
        ["-c", script],
        entrypoint="python3",
        environment={"HOME": "/tmp"},
        working_dir="/tmp",
        remove=True,
        **LOCKED_DOWN,
    ).decode()
    assert "compiled [1.0, 1.0, 1.0]" in output
    assert f"CUDA {output.split()[-1]}," in image.labels[cuda.CUDA_BUILD_LABEL]


def test_tensorflow_cuda_image_prints_the_runner_usage(engine) -> None:  # noqa: ANN001
    image = _image(engine, "tensorflow")
    output = engine.containers.run(image.id, ["--help"], remove=True, **LOCKED_DOWN).decode()
    assert "usage: python -m tf_runner" in output and "--spec" in output
