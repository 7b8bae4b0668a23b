"""What a result was made with: the metrics.json header (versions, and any the runner was
not tested with, machine, runtime, the image it ran in, the determinism switches, dataset)
and the label of the weights the baseline started from. Together they say what decides
whether a rerun is bit-identical."""

from __future__ import annotations

import os

import numpy as np

from harness_contract import __version__, system, versions
from harness_contract.data.cifar import Cifar10
from harness_contract.frameworks import FRAMEWORKS
from harness_contract.metrics import (
    DatasetInfo,
    ImageIdentity,
    MetricsFile,
    ModelInfo,
    Provenance,
    UntestedVersion,
    now_iso,
)
from harness_contract.model.network import network, title
from harness_contract.model.weights import initial_weights, weights_digest
from harness_contract.spec import ExperimentSpec, ModelSpec
from harness_contract.study.framework import DeviceInfo, Framework


def provenance(
    fw: Framework,
    device: DeviceInfo,
    threads: int,
    runtime: str,
    image: ImageIdentity | None = None,
    determinism: dict[str, str] | None = None,
) -> Provenance:
    return Provenance(
        harness_version=__version__,
        framework_versions=fw.versions(),
        python=system.python_version(),
        platform=system.platform_string(),
        hostname=system.hostname(),
        uid=os.getuid() if hasattr(os, "getuid") else None,
        network_interfaces=system.network_interfaces(),
        runtime=runtime,
        cpu_model=system.cpu_model(),
        cpu_flags=system.cpu_flags(),
        cpu_count=system.usable_cpus(),
        threads=threads,
        device=device.train_device + (f" ({device.gpu})" if device.gpu else ""),
        gpu=device.gpu,
        cuda=device.cuda,
        cudnn=device.cudnn,
        gpu_driver=system.gpu_driver() if device.gpu else None,
        image=image,
        determinism=dict(determinism or {}),
        untested_versions=untested(fw.name),
        untested_versions_allowed=versions.untested_allowed(),
    )


def untested(framework: str) -> list[UntestedVersion]:
    """The required packages installed here at another major.minor than the runner was
    tested with, read from package metadata like the runner's own check."""
    if framework not in FRAMEWORKS:  # a test framework of another name pins nothing
        return []
    found = versions.untested_versions(framework, versions.installed_versions(framework))
    return [
        UntestedVersion(package=u.package, installed=u.installed, tested=u.tested) for u in found
    ]


def dataset_info(data: Cifar10) -> DatasetInfo:
    return DatasetInfo(
        path=str(data.root),
        kind=data.kind,
        train_images=len(data.train_labels),
        test_images=len(data.test_labels),
        digest=data.digest,
    )


def new_metrics(
    fw: Framework,
    spec: ExperimentSpec,
    data: Cifar10,
    run_id: str,
    runtime: str,
    device: DeviceInfo,
    threads: int,
    image: ImageIdentity | None = None,
    determinism: dict[str, str] | None = None,
) -> MetricsFile:
    """A "running" metrics.json with its provenance and no phases yet."""
    return MetricsFile(
        framework=fw.name,
        status="running",
        run_id=run_id,
        spec_name=spec.name,
        spec_digest=spec.digest(),
        seed=spec.seed,
        started_at=now_iso(),
        updated_at=now_iso(),
        provenance=provenance(fw, device, threads, runtime, image, determinism),
        dataset=dataset_info(data),
        model=ModelInfo(
            arch=spec.model.arch,
            title=title(spec.model),
            parameters=network(spec.model).parameter_count(),
        ),
    )


def start_weights(model: ModelSpec, seed: int) -> dict[str, np.ndarray] | None:
    """The shared initial weights made from the seed; None: the framework's own init."""
    if model.init == "framework":
        return None
    return initial_weights(model, seed)


def weights_label(weights: dict[str, np.ndarray] | None, own: bool = False) -> str:
    """How metrics.json names a starting point: equal labels, identical weights.

    ``own``: the framework drew ``weights`` with its own initializers ("framework-default:
    <digest>", or plain "framework-default" when the runner cannot export them).
    """
    if own:
        return (
            "framework-default"
            if weights is None
            else f"framework-default:{weights_digest(weights)}"
        )
    if weights is None:
        return "framework-default"
    return f"shared:{weights_digest(weights)}"
