"""The provenance unit on its own: the metrics.json header (the image and determinism
switches included) and the start-weights label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness_contract.layout import FrameworkDir
from harness_contract.metrics import ImageIdentity, read_metrics
from harness_contract.spec import determinism_wanted
from harness_contract.study.driver import StudyDriver
from harness_contract.study.framework import DeviceInfo
from harness_contract.study.provenance import new_metrics, start_weights, weights_label

from .numpy_framework import NumpyFramework
from .study_units import tiny_data, tiny_spec


def test_a_new_metrics_file_is_running_with_its_provenance_and_dataset() -> None:
    spec, data = tiny_spec(), tiny_data()
    device = DeviceInfo(train_device="cuda:0", gpu="Some GPU", cuda="12.6", cudnn="9")
    metrics = new_metrics(NumpyFramework(), spec, data, "run-1", "local (test)", device, 3)
    assert (metrics.status, metrics.framework, metrics.run_id) == ("running", "numpy", "run-1")
    assert metrics.spec_digest == spec.digest() and metrics.variants == {}
    assert metrics.provenance.device == "cuda:0 (Some GPU)" and metrics.provenance.threads == 3
    assert metrics.provenance.framework_versions == {"numpy": np.__version__}
    assert metrics.provenance.runtime == "local (test)"
    assert (metrics.dataset.train_images, metrics.dataset.test_images) == (200, 70)
    assert metrics.dataset.digest == "d1" and metrics.dataset.kind == "synthetic"


def test_start_weights_are_shared_by_seed_or_left_to_the_framework() -> None:
    spec = tiny_spec("model.width_multiplier=0.125")
    a, b = start_weights(spec.model, 0), start_weights(spec.model, 0)
    assert weights_label(a) == weights_label(b) != weights_label(start_weights(spec.model, 1))
    assert weights_label(a).startswith("shared:")
    framework = tiny_spec("model.init=framework").model
    assert start_weights(framework, 0) is None and weights_label(None) == "framework-default"


def test_the_image_and_determinism_switches_go_into_the_provenance() -> None:
    image = ImageIdentity(repository="quant-harness-pytorch", tag="0.1.0", id="sha256:" + "c" * 64)
    metrics = new_metrics(
        NumpyFramework(),
        tiny_spec(),
        tiny_data(),
        "r",
        "docker image quant-harness-pytorch:0.1.0",
        DeviceInfo(train_device="cpu"),
        1,
        image=image,
        determinism={"seed": "0"},
    )
    assert metrics.provenance.image == image
    assert metrics.provenance.determinism == {"seed": "0"}


@pytest.mark.parametrize(
    ("asked", "device", "wanted"),
    [
        (None, "cpu", True),  # free on the CPU: on by default
        (None, "cuda:0", False),  # can slow GPU training: only when asked
        (True, "cuda:0", True),
        (False, "cpu", False),
    ],
)
def test_determinism_is_on_for_cpu_runs_unless_the_spec_says(
    asked: bool | None, device: str, wanted: bool
) -> None:
    spec = tiny_spec(f"deterministic={'null' if asked is None else str(asked).lower()}")
    assert spec.deterministic is asked
    assert determinism_wanted(spec, device) is wanted


class OnTheGpu(NumpyFramework):
    def setup(self, spec, threads):
        super().setup(spec, threads)
        return DeviceInfo(train_device="cuda:0", gpu="Some GPU")


@pytest.mark.parametrize(("fw", "switch"), [(NumpyFramework, "True"), (OnTheGpu, "False")])
def test_the_driver_sets_the_switches_before_any_phase_and_records_them(
    tmp_path: Path, fw: type[NumpyFramework], switch: str
) -> None:
    out = FrameworkDir(tmp_path)
    image = ImageIdentity(repository="r", id="sha256:" + "d" * 64)
    framework = fw()
    build, seen = framework.build, []

    def watched_build(weights):
        seen.append(getattr(framework, "deterministic", None))
        return build(weights)

    framework.build = watched_build
    StudyDriver(framework, tiny_spec(), tiny_data(), out, "r", "t", image).run(threads=1)
    assert seen and all(str(s) == switch for s in seen)  # set before the first model
    recorded = read_metrics(out.metrics).provenance
    assert recorded.determinism == {"seed": "0", "deterministic": switch}
    assert recorded.image == image
