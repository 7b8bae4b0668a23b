"""The two-step CUDA build (harness/images/cuda.py) against a fake Docker engine: the
image the probe passed is the one labelled and named; a failed probe names the problem and
leaves the CUDA tag alone."""

from __future__ import annotations

import json

import pytest

from harness.images import build as images
from harness.images import cuda
from harness_contract.errors import HarnessError
from tests.test_cuda_images import PYTORCH_FACTS


class _FakeEngine:
    """Just enough of the Docker SDK for build_cuda: builds, tags, one probe container."""

    def __init__(self, facts: dict) -> None:
        self.tags: dict[str, str] = {}  # name -> image id
        self.builds: list[tuple[str, str]] = []  # (tag, dockerfile)
        self.removed: list[str] = []
        self.facts = facts
        self.api, self.images, self.containers = self, self, self

    # api.build: the Dockerfile.cuda build (path=) or the label build (fileobj=)
    def build(self, tag: str, path: str | None = None, fileobj=None, **kw):  # noqa: ANN001, ANN201
        dockerfile = fileobj.read().decode() if fileobj else kw["dockerfile"]
        self.builds.append((tag, dockerfile))
        self.tags[tag] = "sha256:" + f"{len(self.builds):02d}" * 32
        return iter([{"stream": f"Successfully tagged {tag}\n"}])

    def get(self, ref: str):  # noqa: ANN201
        return type("Image", (), {"id": self.tags[ref]})()

    def remove(self, name: str, **kw) -> None:  # noqa: ANN003
        self.removed.append(name)
        self.tags.pop(name, None)

    def create(self, image: str, command: list[str], **kw):  # noqa: ANN003, ANN201
        assert kw["network_mode"] == "none" and kw["read_only"]  # as a study runs
        out = json.dumps(self.facts).encode()
        return type(
            "Container",
            (),
            {
                "start": lambda self: None,
                "wait": lambda self, timeout: {"StatusCode": 0},
                "logs": lambda self, stdout=True, stderr=False: out if stdout else b"",
                "remove": lambda self, force: None,
            },
        )()


def _locked_facts(framework: str, **changes: object) -> dict:
    wheels = {k: v for k, v in cuda.locked_pins(framework).items() if k.startswith("nvidia-")}
    return {**PYTORCH_FACTS, "framework": framework, "wheels": wheels, **changes}


def test_a_cuda_build_labels_the_image_it_probed_and_names_only_that(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = _FakeEngine(_locked_facts("pytorch"))
    monkeypatch.setattr(images, "docker_client", lambda *a, **kw: engine)
    (built,) = cuda.build_cuda(["pytorch"], progress=lambda line: None)
    ref = images.image_ref("pytorch", variant="cuda")
    (first, dockerfile), (second, label_build) = engine.builds
    assert first == f"{ref}-unlabelled" and dockerfile == "images/pytorch/Dockerfile.cuda"
    stage_one = "sha256:" + "01" * 32
    assert second == ref and label_build.startswith(f"FROM {stage_one}\nLABEL ")
    pins = cuda.locked_pins("pytorch")
    assert f'{cuda.CUDNN_LABEL}="{pins["nvidia-cudnn-cu13"]}"' in label_build
    assert engine.removed == [f"{ref}-unlabelled"]
    assert engine.tags == {ref: built.image_id} and built.image_id != stage_one


def test_a_cuda_build_whose_probe_finds_no_cuda_fails_and_leaves_the_tag_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = _FakeEngine(_locked_facts("pytorch", built_with_cuda=False, cuda_build=None))
    monkeypatch.setattr(images, "docker_client", lambda *a, **kw: engine)
    ref = images.image_ref("pytorch", variant="cuda")
    with pytest.raises(HarnessError, match="is not a working CUDA image") as caught:
        cuda.build_cuda(["pytorch"], progress=lambda line: None)
    assert "is not a CUDA build" in caught.value.one_line()
    assert f"inspect it as {ref}-unlabelled" in caught.value.one_line()
    assert ref not in engine.tags and len(engine.builds) == 1
