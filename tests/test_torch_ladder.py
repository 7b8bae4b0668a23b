"""The PyTorch runtime ladder: Inductor (torch.compile with freezing) and ExecuTorch
(XNNPACK .pte) rungs lower, agree with eager, time at batch 1 and the largest batch, save
a digestable program, and are recorded unavailable (with the fix) where they cannot run."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchao")

from harness_contract.frameworks import FRAMEWORKS  # noqa: E402
from harness_contract.fs.digests import sha256_file  # noqa: E402
from harness_contract.metrics.figures import TrainingStats  # noqa: E402
from harness_contract.spec import build_spec  # noqa: E402
from harness_contract.study.framework import (  # noqa: E402
    Lowered,
    RungInputs,
    RungUnavailable,
    ThreadsUnsupported,
)
from harness_contract.study.ladder import per_batch_models  # noqa: E402
from harness_contract.versions import version_problem  # noqa: E402
from torch_runner import executorch as et_rung  # noqa: E402
from torch_runner.inductor import CompiledModel  # noqa: E402
from torch_runner.runner import TorchFramework  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

ROOT = Path(__file__).resolve().parents[1]
WIDTH = "model.width_multiplier=0.0625"
THREADS = 2
MAX_BATCH = 16
# fp32 on another runtime reorders float sums only: logits stay within this of eager.
FP32_ATOL = 1e-4
# int8 on another runtime (or its own int8 model) may flip a near-tie: argmax agreement.
INT8_AGREEMENT = 0.9


def _framework(*overrides: str) -> TorchFramework:
    fw = TorchFramework()
    fw.setup(build_spec("smoke", overrides=["device=cpu", WIDTH, *overrides]), threads=THREADS)
    return fw


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _no_fine_tune(model: Any) -> tuple[Any, None]:
    raise AssertionError("only the QAT rung fine-tunes")


def _inputs(variant: str, model: Any, fp32: Any, **kw: Any) -> RungInputs:
    args = {"calibration": [], "fine_tune": _no_fine_tune, "max_batch": MAX_BATCH} | kw
    return RungInputs(variant=variant, model=model, fp32=fp32, **args)


@pytest.fixture(scope="module")
def fw() -> TorchFramework:
    return _framework()


@pytest.fixture(scope="module")
def fp32(fw: TorchFramework) -> Any:
    return fw.build(None).eval()


@pytest.fixture(scope="module")
def calibration() -> list[np.ndarray]:
    return [_images(16, seed=1), _images(16, seed=2)]


@pytest.fixture(scope="module")
def ptq(fw: TorchFramework, fp32: Any, calibration: list[np.ndarray]) -> Any:
    return fw.quantize_ptq(fp32, calibration).model


def _check_runs_and_saves(fw: TorchFramework, lowered: Lowered, tmp: Path, stem: str) -> Path:
    """latency_call at batch 1 and the largest batch, on the model made for that batch where
    the runtime makes one (Inductor); save writes one digestable file."""
    models, seconds = per_batch_models(lowered, [1, MAX_BATCH])
    for batch in (1, MAX_BATCH):
        call, device = fw.latency_call(models.get(batch, lowered.model), _images(batch))
        call()
        call()
        assert device == "cpu"
    saved = fw.save(lowered.model, tmp, stem)
    [path] = saved.files
    assert path.name == saved.size.file and path.stat().st_size == saved.size.bytes > 0
    assert len(sha256_file(path)) == 64
    compile_s = lowered.compile_s if lowered.compile_s is not None else max(seconds.values())
    assert compile_s > 0
    return path


# ---------------------------------------------------------------- Inductor


@pytest.mark.slow
def test_inductor_fp32_matches_eager_at_any_batch_without_recompiling(
    fw: TorchFramework, fp32: Any, tmp_path: Path
) -> None:
    """Accuracy runs on the static compile for the largest latency batch: a number of
    images that is not a multiple of it runs in chunks, the last padded, never recompiling."""
    lowered = fw.lower("inductor", _inputs("baseline", fp32, fp32))
    model, seconds = lowered.for_batch(16)
    assert seconds > 0
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    images = _images(37)  # two full chunks and a padded one
    np.testing.assert_allclose(fw.predict(model, images), fw.predict(fp32, images), atol=FP32_ATOL)
    path = _check_runs_and_saves(fw, lowered, tmp_path, "baseline-inductor")
    assert path.suffix == ".pt2" and fw.save(model, tmp_path, "x").size.format.startswith("pt2")
    graphs += 2  # _check_runs_and_saves compiles its own b1 and b16
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs
    assert any("cold Inductor cache" in n for n in lowered.notes)
    cache = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    assert cache.name.startswith("inductor-cache-") and any(cache.iterdir())  # ours, used
    with pytest.raises(ThreadsUnsupported, match="thread count"), fw.threads_for(model, 1):
        pass
    with pytest.raises(RuntimeError, match="template"):
        fw.predict(lowered.model, images)  # nothing compiled: never eager timed as Inductor


def test_a_pt2_is_the_same_file_whichever_build_of_torch_saved_it(
    fw: TorchFramework, fp32: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CPU and CUDA wheels of one release save an Inductor rung's program: the same
    file, recording the release (the wheel's build label is in provenance), and torch's
    own version is left as it was."""
    template = CompiledModel(compiled=None, source=fp32, precision="fp32", max_batch=4)
    release = str(torch.__version__).split("+")[0]
    digests = set()
    for label in (f"{release}+cpu", f"{release}+cu130"):
        monkeypatch.setattr(torch, "__version__", torch.torch_version.TorchVersion(label))
        torch.manual_seed(0)  # the archive's sample input is drawn, as in a seeded run
        [path] = fw.save(template, tmp_path / label, "baseline-inductor").files
        digests.add(sha256_file(path))
        with zipfile.ZipFile(path) as archive:
            [model] = [n for n in archive.namelist() if n.endswith("models/model.json")]
            assert json.loads(archive.read(model))["torch_version"] == release
        assert torch.__version__ == label
    assert len(digests) == 1


@pytest.mark.slow
def test_inductor_int8_compiles_the_pt2e_graph_and_agrees_with_onednn(
    fw: TorchFramework, fp32: Any, ptq: Any, tmp_path: Path
) -> None:
    lowered = fw.lower("inductor", _inputs("ptq", ptq, fp32))
    # Its op census is the q/dq graph it compiles: the variant's own.
    assert lowered.ops is not None and lowered.ops.source.endswith("as compiled by Inductor")
    assert lowered.ops.counts == fw.op_census(ptq).counts
    model, _ = lowered.for_batch(64)
    images = _images(64, seed=3)
    onednn = fw.predict(ptq, images).argmax(1)
    assert (fw.predict(model, images).argmax(1) == onednn).mean() >= INT8_AGREEMENT
    _check_runs_and_saves(fw, lowered, tmp_path, "ptq-inductor")


@pytest.mark.slow
def test_inductor_latency_runs_a_static_compile_made_for_each_batch_size(
    fw: TorchFramework, fp32: Any
) -> None:
    """A general compile (batch unbacked) ran 1.77x slower than a static one at batch 1,
    full width: each latency batch size gets a static-shape compile of its own, timed, and
    a timed call never compiles (fail_on_recompile)."""
    lowered = fw.lower("inductor", _inputs("baseline", fp32, fp32))
    models, seconds = per_batch_models(lowered, [1, 4, 1])
    assert sorted(models) == sorted(seconds) == [1, 4]  # one compile per batch size
    assert all(s > 0 for s in seconds.values())
    for batch, model in models.items():
        assert model.batch == batch and model.compiled is not None
        call, _ = fw.latency_call(model, _images(batch))
        graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        call()
        np.testing.assert_allclose(
            fw.predict(model, _images(batch)), fw.predict(fp32, _images(batch)), atol=FP32_ATOL
        )
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs
    assert models[1].compiled is not models[4].compiled


def test_inductor_int8_of_the_fx_flow_is_unavailable_with_the_fix(
    calibration: list[np.ndarray],
) -> None:
    fx = _framework("pytorch.quant_flow=fx")
    fp32 = fx.build(None).eval()
    int8 = fx.quantize_ptq(fp32, calibration).model
    with pytest.raises(RungUnavailable, match="PT2E") as caught:
        fx.lower("inductor", _inputs("ptq", int8, fp32))
    assert caught.value.fix == "set pytorch.quant_flow=pt2e"


def test_inductor_without_a_cpp_compiler_is_unavailable_naming_it(
    fw: TorchFramework, fp32: Any
) -> None:
    from torch._inductor import config

    # config.patch, not monkeypatch: undoing a setattr on torch's config module hides the
    # option from every later compile in this process
    with (
        config.patch({"cpp.cxx": (None, "no-such-g++-on-this-machine")}),
        pytest.raises(RungUnavailable, match="no-such-g\\+\\+-on-this-machine") as caught,
    ):
        fw.lower("inductor", _inputs("baseline", fp32, fp32))
    assert "install g++" in (caught.value.fix or "")


@pytest.mark.slow
def test_inductor_compile_time_excludes_the_one_time_setup(
    fw: TorchFramework, fp32: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inductor's per-process setup (ISA probe, precompiled header: ~8 s on 2 cores) is
    paid before the timed compile and named in a note: the first rung compiled (fp32) read
    11 s against 3 s for int8 while it was inside."""
    import time

    from torch_runner import inductor

    def slow_setup() -> float:
        time.sleep(1.0)
        return 1.0

    monkeypatch.setattr(inductor, "setup_seconds", slow_setup)
    t0 = time.perf_counter()
    lowered = fw.lower("inductor", _inputs("baseline", fp32, fp32))
    _, compile_s = lowered.for_batch(4)
    wall = time.perf_counter() - t0
    assert compile_s <= wall - 1.0
    assert any("one-time setup" in n and "1.0 s" in n for n in lowered.notes)


def test_inductor_without_python_headers_is_unavailable_naming_them(
    fw: TorchFramework, fp32: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A compiler alone compiles nothing: the wrapper includes Python.h (a bookworm image
    had g++ without python3-dev and every Inductor rung failed)."""
    from torch_runner import inductor

    monkeypatch.setattr(inductor, "python_header", lambda: tmp_path / "Python.h")
    with pytest.raises(RungUnavailable, match="Python.h") as caught:
        fw.lower("inductor", _inputs("baseline", fp32, fp32))
    assert "python3-dev" in (caught.value.fix or "")


# ---------------------------------------------------------------- ExecuTorch


@pytest.mark.slow
def test_executorch_fp32_matches_eager_and_switches_its_threadpool(
    fw: TorchFramework, fp32: Any, tmp_path: Path
) -> None:
    lowered = fw.lower("executorch", _inputs("baseline", fp32, fp32))
    for batch in (1, 2, 15, 16):  # 16: past the range a conv's fake kernel used to cap
        images = _images(batch)
        np.testing.assert_allclose(
            fw.predict(lowered.model, images), fw.predict(fp32, images), atol=FP32_ATOL
        )
    path = _check_runs_and_saves(fw, lowered, tmp_path, "baseline-executorch")
    assert path.suffix == ".pte" and path.read_bytes() == lowered.model.program
    assert et_rung.thread_count() == THREADS
    with fw.threads_for(lowered.model, 1):
        assert et_rung.thread_count() == 1
        call, _ = fw.latency_call(lowered.model, _images(1))
        call()  # the method is reloaded on the new pool
    assert et_rung.thread_count() == THREADS
    fw.predict(lowered.model, _images(3))


@pytest.mark.slow
def test_executorch_ptq_is_its_own_xnnpack_int8_model(
    fw: TorchFramework, fp32: Any, calibration: list[np.ndarray], tmp_path: Path
) -> None:
    lowered = fw.lower("executorch", _inputs("ptq", None, fp32, calibration=calibration))
    stats = lowered.conversion
    assert stats is not None and stats.flow == "pt2e-xnnpack-executorch"
    assert stats.calibration_samples == 32 and stats.calibration_s > 0
    assert "xnnpack.convolution.default (qs8)" in stats.quantized_ops
    assert all(op.endswith("(qs8)") for op in stats.quantized_ops)
    images = _images(MAX_BATCH, seed=4)  # a .pte takes batches up to its max_batch
    agree = fw.predict(lowered.model, images).argmax(1) == fw.predict(fp32, images).argmax(1)
    assert agree.mean() >= INT8_AGREEMENT
    assert any("XNNPACKQuantizer" in n and "calibration" in n for n in lowered.notes)
    path = _check_runs_and_saves(fw, lowered, tmp_path, "ptq-executorch")
    fp32_pte = et_rung.lower_fp32(fp32, MAX_BATCH).model.program
    assert path.stat().st_size < len(fp32_pte) / 1.5  # int8 weights, not fp32 ones


@pytest.mark.slow
def test_executorch_qat_fine_tunes_through_the_study_trainer(fw: TorchFramework, fp32: Any) -> None:
    calls: list[Any] = []

    def fine_tune(prepared: Any) -> tuple[Any, TrainingStats]:
        calls.append(prepared)
        trainer = fw.trainer(prepared, fw.spec.qat)  # the study's SGD trainer, real steps
        rng = np.random.default_rng(5)
        for _ in range(2):
            trainer.step(_images(8), rng.integers(0, 10, 8), lr=0.05)
        loss, acc = trainer.end_epoch()
        stats = TrainingStats(
            device="cpu",
            threads=THREADS,
            epochs=1,
            wall_s=0.0,
            images=16,
            images_per_s=0.0,
            loss=[loss],
            train_accuracy=[acc],
        )
        return prepared, stats

    before = {k: v.clone() for k, v in fp32.state_dict().items()}
    lowered = fw.lower("executorch", _inputs("qat", None, fp32, fine_tune=fine_tune))
    [prepared] = calls
    assert any(
        "fake_quant" in name or "activation_post_process" in name
        for name, _ in prepared.named_modules()
    )
    assert all(torch.equal(v, fp32.state_dict()[k]) for k, v in before.items())  # a copy trained
    assert lowered.conversion is not None and lowered.conversion.quantized_ops
    assert any("QAT fine-tuning" in n for n in lowered.notes)
    assert lowered.training is not None and lowered.training.images == 16
    fw.predict(lowered.model, _images(4))


@pytest.mark.slow
def test_executorch_qat_without_fine_tuning_is_unavailable_naming_qat_epochs(
    fw: TorchFramework, fp32: Any
) -> None:
    def untouched(prepared: Any) -> tuple[Any, None]:  # the study's fine_tune at qat.epochs=0
        return prepared, None

    with pytest.raises(RungUnavailable, match="qat.epochs is 0") as caught:
        fw.lower("executorch", _inputs("qat", None, fp32, fine_tune=untouched))
    assert caught.value.fix == "set qat.epochs to 1 or more"


def test_executorch_missing_is_unavailable_with_the_install_line(
    fw: TorchFramework, fp32: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "executorch.runtime", None)  # import raises ImportError
    with pytest.raises(RungUnavailable, match="ExecuTorch is not importable") as caught:
        fw.lower("executorch", _inputs("baseline", fp32, fp32))
    assert caught.value.fix == "pip install executorch==1.5.1"


# ---------------------------------------------------------------- pins, weights


def test_executorch_is_pinned_but_never_stops_a_runner() -> None:
    [pin] = [p for p in FRAMEWORKS["pytorch"].pins if p.package == "executorch"]
    assert (pin.version, pin.required) == ("1.5.1", False)
    working = {p.package: p.version for p in FRAMEWORKS["pytorch"].pins if p.required}
    assert version_problem("pytorch", working) is None  # executorch absent: still runs
    edge_lines = (ROOT / "images" / "pytorch" / "requirements-edge.txt").read_text().splitlines()
    assert [line for line in edge_lines if line and not line.startswith("#")] == [
        f"executorch=={pin.version}"
    ]
    assert f"executorch=={pin.version}" in et_rung.INSTALL


def test_weights_of_returns_the_canonical_tensors(fw: TorchFramework, fp32: Any) -> None:
    weights = fw.weights_of(fp32)
    assert set(weights) == set(fw.net.tensor_shapes())
    for name, shape in fw.net.tensor_shapes().items():
        assert weights[name].shape == shape and weights[name].dtype == np.float32
    np.testing.assert_array_equal(weights["stem.weight"], fp32.stem.weight.detach().numpy())


# End to end, every variant's rungs through the CLI: tests/test_cli_e2e.py (the e2e run).
