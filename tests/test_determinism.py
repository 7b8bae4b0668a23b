"""Bit-exactness: the same spec run twice, each time in a fresh runner process, saves
byte-identical model files (equal artifact digests) for every variant, and records the
determinism switches it set and the image the host named. PyTorch's counterpart is the
session's e2e run and its reproduction (tests/test_reproduce_e2e.py: every variant's
.pt, .pt2 and .pte), which would otherwise be a third PyTorch study here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness_contract.entrypoint import runner_command
from harness_contract.metrics import ImageIdentity, MetricsFile, read_metrics
from harness_contract.spec import build_spec
from harness_contract.study.pipeline import Study

from .numpy_framework import NumpyFramework
from .study_units import tiny_data, tiny_spec

RUNNERS = {"tensorflow": "tf_runner"}
REQUIRES = {"tensorflow": ("tensorflow", "tf_keras")}
RUNNER_TIMEOUT_S = 300
# As small as a study gets while every phase still trains, converts and saves.
TINY = [
    "device=cpu",
    "model.width_multiplier=0.125",
    "model.blocks_per_stage=1",  # ResNet10: every layer kind, half the compile time
    "data.train_limit=256",
    "data.test_limit=64",
    "train.epochs=1",
    "train.batch_size=64",
    "train.warmup_epochs=0",
    "qat.epochs=1",
    "qat.batch_size=64",
    "ptq.calibration_samples=32",
    "measure.threads=2",
    "measure.eval_batch_size=64",
    "measure.latency.batch_sizes=[1]",
    "measure.latency.thread_sweep=false",
    "measure.latency.warmup_count=1",
    "measure.latency.warmup_seconds=0",
    "measure.latency.min_count=3",
    "measure.latency.min_seconds=0",
    "measure.profile.enabled=false",
    "support.enabled=false",
    "analysis.enabled=false",
    "measure.rung_variants=[baseline,ptq,qat]",  # every model file, QAT's rungs too
]
IMAGE = ImageIdentity(
    repository="quant-harness-test", tag="1", id="sha256:" + "e" * 64, digest=None
)


def _digests(metrics: MetricsFile) -> dict[str, str]:
    """Every model file of every variant and of every runtime rung."""
    files = [a for v in metrics.variants.values() for a in v.artifacts]
    files += [a for v in metrics.variants.values() for r in v.rungs for a in r.artifacts]
    return {a.file: a.sha256 for a in files}


def test_the_numpy_study_run_twice_saves_identical_artifacts(tmp_path: Path) -> None:
    runs = [
        Study(NumpyFramework(), tiny_spec(), tiny_data(), tmp_path / name, "r", "t").run(1)
        for name in ("a", "b")
    ]
    assert _digests(runs[0]) == _digests(runs[1]) != {}


def _run(framework: str, spec: Path, data: Path, out: Path, image: ImageIdentity | None):
    argv = runner_command(spec, data, out, out.parent.name, "local (test)", image=image)
    proc = subprocess.run(
        [sys.executable, "-m", RUNNERS[framework], *argv],
        capture_output=True,
        text=True,
        timeout=RUNNER_TIMEOUT_S,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return read_metrics(out / "metrics.json"), proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("framework", sorted(RUNNERS))
def test_a_cpu_study_run_twice_saves_bit_identical_model_files(
    framework: str, synthetic_data: Path, tmp_path: Path
) -> None:
    for module in REQUIRES[framework]:
        pytest.importorskip(module)
    spec = tmp_path / "spec.json"
    spec.write_text(build_spec("smoke", overrides=TINY).to_json())

    first, log = _run(framework, spec, synthetic_data, tmp_path / "a" / framework, IMAGE)
    second, _ = _run(framework, spec, synthetic_data, tmp_path / "b" / framework, None)

    assert [v.status for v in first.variants.values()] == ["ok", "ok", "ok"]
    digests = _digests(first)
    # The LiteRT rung's fp32 .tflite too.
    expected = {
        "artifacts/baseline.weights.h5",
        "artifacts/baseline-litert.tflite",
        "artifacts/ptq.tflite",
        "artifacts/qat.tflite",
    }
    assert set(digests) == expected
    assert digests == _digests(second)
    # Every saved model file is listed; latency samples are not.
    on_disk = {
        f"artifacts/{p.name}"
        for p in (tmp_path / "a" / framework / "artifacts").iterdir()
        if not p.name.startswith("latency-")
    }
    assert on_disk == expected
    switches = first.provenance.determinism
    on = "tf.config.experimental.enable_op_determinism"
    assert switches[on] == "True" and switches["seed"].startswith("0 ")
    assert first.provenance.image == IMAGE and second.provenance.image is None
    # On the CPU every op the study runs has a deterministic kernel: nothing warned.
    assert "does not have a deterministic implementation" not in log
