"""The smoke study on real CIFAR-10 images (the shared 5,000/1,000 subset), BatchNorm variant,
both frameworks in one `harness compare`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness_contract.metrics import MetricsFile, read_metrics

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

SUBSET = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-subset"
# Only what the assertions need, to stay near 90 s on a 2-core CPU: no QAT phase, and
# latency at batch 1 with a short stop rule (both are covered on synthetic data elsewhere).
OVERRIDES = [
    "data.train_limit=2000",  # the smoke's own 1,000 leave the BN network undertrained
    "model.variant=bn",
    "qat.enabled=false",
    "measure.latency.batch_sizes=[1]",
    "measure.latency.warmup_count=1",
    "measure.latency.warmup_seconds=0",
    "measure.latency.min_count=3",
    "measure.latency.min_seconds=0",
    "support.enabled=false",
    "analysis.enabled=false",
    "pytorch.runtimes=[]",
    "tensorflow.runtimes=[]",
]


FRAMEWORKS = ("pytorch", "tensorflow")


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MetricsFile]:
    if not (SUBSET / "cifar-10-batches-py").is_dir():
        pytest.skip(f"the real CIFAR-10 subset is not at {SUBSET} (it lives outside the project)")
    results = tmp_path_factory.mktemp("real-results")
    cmd = [sys.executable, "-m", "harness", "compare", "--preset", "smoke"]
    cmd += ["--data", str(SUBSET), "--results", str(results), "--run-id", "real"]
    cmd += [arg for o in OVERRIDES for arg in ("--set", o)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {fw: read_metrics(results / "real" / fw / "metrics.json") for fw in FRAMEWORKS}


@pytest.fixture(params=FRAMEWORKS)
def real_run(request: pytest.FixtureRequest, real_runs: dict[str, MetricsFile]) -> MetricsFile:
    return real_runs[request.param]


def test_real_run_reads_the_real_subset(real_run: MetricsFile) -> None:
    assert real_run.status == "complete"
    assert real_run.dataset.kind == "real"
    assert (real_run.dataset.train_images, real_run.dataset.test_images) == (2000, 500)
    assert real_run.variants["qat"].status == "skipped"


def test_bn_baseline_beats_chance_on_real_images(real_run: MetricsFile) -> None:
    baseline = real_run.variants["baseline"]
    assert baseline.status == "ok"
    assert baseline.accuracy.top1 > 0.2  # chance is 0.1


def test_ptq_keeps_the_bn_baseline_accuracy_on_real_images(real_run: MetricsFile) -> None:
    ptq = real_run.variants["ptq"]
    assert ptq.status == "ok", ptq.reason
    assert abs(ptq.accuracy.top1 - real_run.variants["baseline"].accuracy.top1) <= 0.05
    assert ptq.conversion.quantized_ops


def test_both_frameworks_start_alike_and_land_close(real_runs: dict[str, MetricsFile]) -> None:
    torch_run, tf_run = (real_runs[fw] for fw in FRAMEWORKS)
    # Same initial weights, same batches, same SGD: the starting point is identical...
    assert torch_run.initial_weights == tf_run.initial_weights
    assert torch_run.initial_weights.startswith("shared:")
    # ...and the first epoch's mean loss too, up to float32 differences between kernels.
    first = [run.variants["baseline"].training.loss[0] for run in (torch_run, tf_run)]
    assert abs(first[0] - first[1]) < 0.02, first
    # Later epochs drift apart (chaotic training), so the final accuracies are only close:
    # within 8 points on 500 test images.
    accuracies = [run.variants["baseline"].accuracy.top1 for run in (torch_run, tf_run)]
    assert abs(accuracies[0] - accuracies[1]) <= 0.08, accuracies
