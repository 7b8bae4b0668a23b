"""The provenance unit on its own: the metrics.json header and the start-weights label."""

from __future__ import annotations

import numpy as np

from harness_contract.framework import DeviceInfo
from harness_contract.provenance import new_metrics, start_weights, weights_label

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
