"""The PyTorch runner: model, sizes (Table I), int8 conversion, QAT, and the entrypoint contract."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchao")

from harness_contract import events  # noqa: E402
from harness_contract.data.cifar import Cifar10, load_cifar10, write_synthetic  # noqa: E402
from harness_contract.data.stream import TrainStream  # noqa: E402
from harness_contract.fs.digests import sha256_file  # noqa: E402
from harness_contract.metrics import read_metrics  # noqa: E402
from harness_contract.model.architecture import resnet18  # noqa: E402
from harness_contract.model.weights import initial_weights  # noqa: E402
from harness_contract.spec import ExperimentSpec, build_spec  # noqa: E402
from harness_contract.study.framework import Quantized  # noqa: E402
from torch_runner.model import build_model  # noqa: E402
from torch_runner.runner import TorchFramework  # noqa: E402

# Deprecation noise from torch's own quantization internals, not from the runner.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*reduce_range will be deprecated:UserWarning",
    "ignore:.*quantized tensor creation functions:UserWarning",
    "ignore:.*LeafSpec.*:FutureWarning",
)

MIB = 2**20
THREADS = 2
FULL_WIDTH_PARAMS = {"nobn": 11_169_162, "bn": 11_173_962}
RUNNER_TIMEOUT_S = 300


def _framework(preset: str, *overrides: str) -> tuple[TorchFramework, ExperimentSpec]:
    spec = build_spec(preset, overrides=["device=cpu", *overrides])
    fw = TorchFramework()
    fw.setup(spec, threads=THREADS)
    return fw, spec


def _uint8_batches(count: int, size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, 32, 32, 3), dtype=np.uint8) for _ in range(count)]


def _train_steps(
    fw: TorchFramework, model: Any, spec: ExperimentSpec, data: Cifar10, steps: int, lr: float
) -> None:
    trainer = fw.trainer(model, spec.qat)
    stream = TrainStream(
        data.train_images,
        data.train_labels,
        batch_size=32,
        seed=0,
        augment=spec.data.augment,
        purpose="qat",
    )
    for i, batch in enumerate(stream.epoch(0)):
        if i == steps:
            break
        trainer.step(batch.images, batch.labels, lr)
    loss, _ = trainer.end_epoch()
    assert np.isfinite(loss)


# ---------------------------------------------------------------- model


@pytest.mark.parametrize("variant", ["nobn", "bn"])
def test_full_width_model_loads_the_canonical_weights_exactly(variant: str) -> None:
    spec = build_spec("paper", overrides=[f"model.variant={variant}"])
    weights = initial_weights(spec.model, seed=0)
    model = build_model(resnet18(spec.model), weights)

    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert set(state) == set(weights)
    for name, array in weights.items():
        assert torch.equal(state[name], torch.from_numpy(array)), name
    assert sum(p.numel() for p in model.parameters()) == FULL_WIDTH_PARAMS[variant]
    with torch.no_grad():
        logits = model.eval()(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()


# ---------------------------------------------------------------- Table I sizes


@dataclass(frozen=True)
class FullWidth:
    fw: TorchFramework
    model: Any
    ptq: Quantized
    out: Path


@pytest.fixture(scope="module")
def full_width(tmp_path_factory: pytest.TempPathFactory) -> FullWidth:
    """The paper's model (full width, no BN), PT2E-quantized with two small calibration batches."""
    fw, spec = _framework("paper")
    model = fw.build(initial_weights(spec.model, spec.seed))
    q = fw.quantize_ptq(model, _uint8_batches(2, 8))
    return FullWidth(fw, model, q, tmp_path_factory.mktemp("full-width"))


@pytest.mark.slow
def test_full_width_fp32_state_dict_is_42_6_mib_as_in_table_1(full_width: FullWidth) -> None:
    saved = full_width.fw.save(full_width.model, full_width.out, "baseline")
    size = saved.size
    assert saved.files == (full_width.out / "baseline.pt",)
    assert size.bytes == (full_width.out / "baseline.pt").stat().st_size
    assert size.bytes / MIB == pytest.approx(42.6, abs=0.1)
    assert size.format == "state_dict"
    assert size.parameters == FULL_WIDTH_PARAMS["nobn"]


@pytest.mark.slow
def test_full_width_ptq_int8_state_dict_is_about_10_8_mib(full_width: FullWidth) -> None:
    saved = full_width.fw.save(full_width.ptq.model, full_width.out, "ptq")
    size = saved.size
    assert saved.files == (full_width.out / "ptq.pt",)
    assert 10.6 <= size.bytes / MIB <= 11.0
    assert size.parameters == FULL_WIDTH_PARAMS["nobn"]
    # Every stored conv/linear weight is int8: no fp32 copy was left behind.
    state = torch.load(full_width.out / "ptq.pt", weights_only=False)
    big = {k: v.dtype for k, v in state.items() if isinstance(v, torch.Tensor) and v.numel() > 4096}
    assert big and all(dtype == torch.int8 for dtype in big.values()), big


@pytest.mark.slow
def test_pt2e_conversion_lowers_onto_onednn_int8_kernels(full_width: FullWidth) -> None:
    conv = full_width.ptq.conversion
    assert conv.flow == "pt2e-x86-inductor"
    assert conv.device == "cpu"
    assert conv.calibration_samples == 16
    assert conv.calibration_s is not None and conv.calibration_s > 0
    assert conv.conversion_s > 0
    assert conv.quantized_ops, "no int8 kernels in the converted graph"
    assert any(op.startswith("onednn.qconv") for op in conv.quantized_ops), conv.quantized_ops
    assert any(op.startswith("onednn.qlinear") for op in conv.quantized_ops), conv.quantized_ops


# ---------------------------------------------------------------- int8 behaviour, small model


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Cifar10:
    root = write_synthetic(
        tmp_path_factory.mktemp("small-synthetic"), train_per_batch=40, test_count=200, seed=3
    )
    return load_cifar10(root)


def _small(flow: str) -> tuple[TorchFramework, ExperimentSpec, Any]:
    # zero_init_residual=false: every residual branch is live, so the untrained network
    # computes a non-trivial function of its input (a fair test of int8 fidelity).
    fw, spec = _framework("smoke", f"pytorch.quant_flow={flow}", "model.zero_init_residual=false")
    return fw, spec, fw.build(initial_weights(spec.model, spec.seed))


@pytest.fixture(scope="module")
def small_ptq(small_data: Cifar10) -> tuple[TorchFramework, Any, Quantized]:
    fw, _, model = _small("pt2e")
    calibration = [small_data.train_images[i : i + 32] for i in range(0, 64, 32)]
    return fw, model, fw.quantize_ptq(model, calibration)


def _centered(logits: np.ndarray) -> np.ndarray:
    """The input-dependent part of the logits (a constant bias cannot fake agreement)."""
    return (logits - logits.mean(axis=0, keepdims=True)).ravel()


@pytest.mark.slow
def test_int8_logits_track_fp32_logits(small_ptq: tuple, small_data: Cifar10) -> None:
    fw, model, q = small_ptq
    fp32 = fw.predict(model, small_data.test_images)
    int8 = fw.predict(q.model, small_data.test_images)
    assert int8.shape == fp32.shape == (len(small_data.test_images), 10)
    assert np.isfinite(int8).all()
    assert np.std(_centered(fp32)) > 0, "fp32 logits do not depend on the input"
    agreement = float((fp32.argmax(1) == int8.argmax(1)).mean())
    assert agreement >= 0.8
    assert np.corrcoef(_centered(fp32), _centered(int8))[0, 1] > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 5, 128])
def test_int8_model_accepts_any_batch_size(
    small_ptq: tuple, small_data: Cifar10, batch_size: int
) -> None:
    fw, _, q = small_ptq
    images = small_data.test_images[:128]
    reference = fw.predict(q.model, images)
    logits = fw.predict(q.model, images[:batch_size])
    assert logits.shape == (batch_size, 10)
    # A row's result must not depend on which batch it came in.
    np.testing.assert_allclose(logits, reference[:batch_size], rtol=0.05, atol=0.05)
    call, device = fw.latency_call(q.model, images[:batch_size])
    call()
    assert device == "cpu"


@pytest.mark.slow
def test_fx_flow_converts_to_quantized_modules(small_data: Cifar10) -> None:
    fw, _, model = _small("fx")
    q = fw.quantize_ptq(model, [small_data.train_images[:32], small_data.train_images[32:64]])
    ops = q.conversion.quantized_ops
    assert q.conversion.flow == "fx-x86"
    assert "torch.ao.nn.quantized.modules.conv.Conv2d" in ops, ops
    assert "torch.ao.nn.quantized.modules.linear.Linear" in ops, ops
    assert any(op.startswith("quantized.") for op in ops), ops  # the int8 residual adds
    fp32 = fw.predict(model, small_data.test_images)
    int8 = fw.predict(q.model, small_data.test_images)
    assert (fp32.argmax(1) == int8.argmax(1)).mean() >= 0.8
    assert fw.predict(q.model, small_data.test_images[:1]).shape == (1, 10)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flow", "kernel"), [("pt2e", "onednn.qconv"), ("fx", "torch.ao.nn.quantized.modules.conv")]
)
def test_qat_fine_tunes_then_converts_to_int8_kernels(
    flow: str, kernel: str, small_data: Cifar10
) -> None:
    fw, spec, model = _small(flow)
    prepared = fw.prepare_qat(model)
    before = {k: v.clone() for k, v in prepared.state_dict().items()}
    _train_steps(fw, prepared, spec, small_data, steps=2, lr=0.01)
    after = prepared.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "QAT steps changed nothing"

    q = fw.convert_qat(prepared)
    assert q.conversion.calibration_s is None
    assert q.conversion.quantized_ops
    assert any(op.startswith(kernel) for op in q.conversion.quantized_ops), q.conversion
    logits = fw.predict(q.model, small_data.test_images[:5])
    assert logits.shape == (5, 10)
    assert np.isfinite(logits).all()
    assert fw.device_of(q.model) == "cpu"


# ---------------------------------------------------------------- entrypoint contract


TINY = [
    "train.epochs=1",
    "qat.epochs=1",
    "measure.latency.batch_sizes=[1,8]",
    "measure.latency.min_count=3",
    "measure.latency.min_seconds=0",
    "measure.latency.warmup_count=1",
    "measure.latency.warmup_seconds=0",
    "data.train_limit=256",
    "data.test_limit=64",
    "ptq.calibration_samples=32",
    # The runtime ladder has its own end-to-end test (tests/test_torch_ladder.py).
    "pytorch.runtimes=[]",
]


@pytest.fixture(scope="module")
def tiny_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-spec") / "spec.json"
    path.write_text(build_spec("smoke", overrides=TINY).to_json())
    return path


def _runner_cmd(spec: Path, data: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch_runner",
        "--spec",
        str(spec),
        "--data",
        str(data),
        "--out",
        str(out),
    ]


def _run_runner(spec: Path, data: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _runner_cmd(spec, data, out),
        capture_output=True,
        text=True,
        timeout=RUNNER_TIMEOUT_S,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _stderr_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def _events(stdout: str) -> list[dict[str, Any]]:
    return [e for e in map(events.parse, stdout.splitlines()) if e is not None]


@pytest.fixture(scope="module")
def completed_runner(
    tiny_spec: Path, synthetic_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Path]:
    out = tmp_path_factory.mktemp("runner") / "pytorch"
    return _run_runner(tiny_spec, synthetic_data, out), out


@pytest.mark.slow
def test_runner_entrypoint_completes_and_writes_metrics(completed_runner: tuple) -> None:
    proc, out = completed_runner
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = read_metrics(out / "metrics.json")
    assert metrics.status == "complete"
    assert metrics.framework == "pytorch"
    assert metrics.run_id == out.parent.name  # --run-id defaults to --out's parent
    assert [metrics.variants[v].status for v in ("baseline", "ptq", "qat")] == ["ok"] * 3
    assert metrics.dataset.train_images == 256 and metrics.dataset.test_images == 64
    assert metrics.variants["ptq"].conversion.calibration_samples == 32
    kinds = [e["event"] for e in _events(proc.stdout)]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert {p.name for p in (out / "artifacts").iterdir()} >= {"baseline.pt", "ptq.pt", "qat.pt"}


@pytest.mark.slow
def test_each_variant_records_its_state_dict_digest(completed_runner: tuple) -> None:
    _, out = completed_runner
    metrics = read_metrics(out / "metrics.json")
    for name, variant in metrics.variants.items():
        (artifact,) = variant.artifacts
        assert artifact.file == f"artifacts/{name}.pt"
        assert artifact.sha256 == sha256_file(out / artifact.file)
        assert artifact.bytes == variant.size.bytes


@pytest.mark.slow
def test_a_cpu_run_turns_deterministic_algorithms_on_and_records_what_decides_bits(
    completed_runner: tuple,
) -> None:
    _, out = completed_runner
    provenance = read_metrics(out / "metrics.json").provenance
    switches = provenance.determinism
    assert switches["torch.use_deterministic_algorithms"] == "True"
    assert switches["warn_only"] == "True" and switches["seed"].startswith("0 ")
    assert switches["torch.backends.cpu.get_cpu_capability"] in {"DEFAULT", "AVX2", "AVX512"}
    assert {"torch", "torchao", "numpy", "onednn"} <= set(provenance.framework_versions)
    assert provenance.image is None  # ran on the host


@pytest.mark.slow
def test_runner_refuses_to_overwrite_completed_results(
    completed_runner: tuple, tiny_spec: Path, synthetic_data: Path
) -> None:
    _, out = completed_runner
    before = (out / "metrics.json").read_bytes()
    proc = _run_runner(tiny_spec, synthetic_data, out)
    assert proc.returncode == 2
    lines = _stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and str(out) in lines[0]
    assert (out / "metrics.json").read_bytes() == before


def test_runner_names_a_corrupt_batch_file(tiny_spec: Path, tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data", train_per_batch=60, test_count=70, seed=0)
    broken = data / "data_batch_2"
    broken.write_bytes(broken.read_bytes()[:5000])
    proc = _run_runner(tiny_spec, data, tmp_path / "out")
    assert proc.returncode == 2
    lines = _stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and str(broken) in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.slow
def test_sigterm_after_baseline_keeps_it_and_marks_the_run_interrupted(
    tiny_spec: Path, synthetic_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pytorch"
    with (tmp_path / "stderr.log").open("w") as err:
        proc = subprocess.Popen(
            _runner_cmd(tiny_spec, synthetic_data, out),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        watchdog = threading.Timer(RUNNER_TIMEOUT_S, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                event = events.parse(line) or {}
                if (event.get("event"), event.get("phase"), event.get("state")) == (
                    "phase",
                    "baseline",
                    "done",
                ):
                    proc.send_signal(signal.SIGTERM)
                    break
            else:
                pytest.fail("the runner ended before its baseline phase was done")
            proc.stdout.read()
            code = proc.wait(60)
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
    assert code == 130, (tmp_path / "stderr.log").read_text()[-3000:]
    metrics = read_metrics(out / "metrics.json")
    assert metrics.status == "interrupted"
    assert metrics.error
    assert metrics.variants["baseline"].status == "ok"
    assert metrics.variants["baseline"].accuracy is not None
    assert "qat" not in metrics.variants
    assert "interrupted" in (tmp_path / "stderr.log").read_text()
