"""The runtime ladder driver (harness_contract.study.ladder) on a numpy framework that plays
PyTorch's ladder: each rung is lowered, measured like its variant, and recorded ok,
failed (with the tool's message), unavailable (with the reason) or skipped (not asked
for), without stopping the study."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from harness_contract.data.cifar import load_cifar10, write_synthetic
from harness_contract.metrics import COMPLETE_WITH_FAILURES, read_metrics
from harness_contract.metrics.figures import ConversionStats
from harness_contract.spec import build_spec
from harness_contract.study.framework import Lowered, RungInputs, RungUnavailable
from harness_contract.study.pipeline import Study

from .numpy_framework import Int8Linear, Linear, NumpyFramework
from .test_pipeline import FAST


class LadderFramework(NumpyFramework):
    """Plays "pytorch" so the spec's pytorch.runtimes chooses its rungs."""

    name = "pytorch"

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], RungInputs] = {}

    def lower(self, runtime: str, inputs: RungInputs) -> Lowered:
        self.seen[(inputs.variant, runtime)] = inputs
        where = (inputs.variant, runtime)
        if where == ("ptq", "inductor"):
            raise RuntimeError("CppCompileError: C++ compile error: g++ exited 1")
        if where == ("qat", "inductor"):
            raise RungUnavailable("no C++ compiler found", "install g++")
        if where == ("ptq", "executorch"):  # its own quantization, from the shared images
            peak = max(float(np.abs(b).max()) for b in inputs.calibration) / 255
            conversion = ConversionStats(
                flow="numpy-xnn",
                device="cpu",
                calibration_samples=sum(len(b) for b in inputs.calibration),
                calibration_s=0.001,
                conversion_s=0.001,
            )
            return Lowered(Int8Linear(inputs.fp32, peak / 127), 0.02, conversion=conversion)
        if where == ("qat", "executorch"):
            trained, training = inputs.fine_tune(Linear(inputs.fp32.w.copy(), inputs.fp32.b))
            return Lowered(Int8Linear(trained, 0.5 / 127), 0.03, training=training)
        t0 = time.perf_counter()
        model = inputs.model
        if isinstance(model, Linear):  # a compiled copy of the fp32 model
            model = Linear(model.w.copy(), model.b.copy())
        return Lowered(model, time.perf_counter() - t0, notes=[f"lowered for {runtime}"])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    root = write_synthetic(tmp_path_factory.mktemp("synth"), train_per_batch=200, test_count=200)
    return load_cifar10(root)


def _run(fw, data, out: Path, extra: list[str] | None = None):
    every = "measure.rung_variants=[baseline,ptq,qat]"  # smoke measures fewer
    spec = build_spec("smoke", None, [*FAST, "support.enabled=false", every, *(extra or [])])
    return Study(fw, spec, data, out, "ladder", "local (test)").run(threads=1)


def test_every_rung_is_measured_like_its_variant_or_recorded_with_why(data, tmp_path) -> None:
    fw = LadderFramework()
    metrics = _run(fw, data, tmp_path)

    assert metrics.status == "complete"
    base, ptq, qat = (metrics.variants[k] for k in ("baseline", "ptq", "qat"))
    assert (base.runtime, ptq.runtime, qat.runtime) == ("eager", "eager", "eager")
    rungs = {(v.variant, r.runtime): r for v in (base, ptq, qat) for r in v.rungs}
    assert {k: r.status for k, r in rungs.items()} == {
        ("baseline", "inductor"): "ok",
        ("baseline", "executorch"): "ok",
        ("ptq", "inductor"): "failed",
        ("ptq", "executorch"): "ok",
        ("qat", "inductor"): "unavailable",
        ("qat", "executorch"): "ok",
    }
    inductor = rungs[("baseline", "inductor")]
    # Measured exactly like the variant: accuracy against the reference fp32, size with
    # digests under its own stem, latency at every batch size.
    assert inductor.accuracy.agreement_with_fp32 == 1.0
    assert inductor.accuracy.top1 == base.accuracy.top1
    assert [lat.batch_size for lat in inductor.latency] == [1, 16]
    assert inductor.artifacts[0].file == "artifacts/baseline-inductor.npz"
    assert (tmp_path / "artifacts" / "baseline-inductor.npz").is_file()
    assert (tmp_path / "artifacts" / "latency-baseline-inductor-b1.npy").is_file()
    assert inductor.notes == ["lowered for inductor"] and inductor.compile_s is not None
    # The tool's own message for a failure, the reason and its fix for an unavailable rung.
    assert rungs[("ptq", "inductor")].reason.startswith("RuntimeError: CppCompileError")
    assert rungs[("qat", "inductor")].reason == "no C++ compiler found; install g++"
    # A rung that needs its own quantized model gets the study's images and fine-tuning.
    assert rungs[("ptq", "executorch")].conversion.calibration_samples == 64
    assert rungs[("qat", "executorch")].training.epochs == 1
    assert fw.seen[("ptq", "executorch")].max_batch == 256  # eval batch > latency batches
    assert not fw.seen[("baseline", "inductor")].calibration  # only PTQ rungs calibrate
    # A failed rung is a failure of the run: it is never reported as plain success.
    saved = read_metrics(tmp_path / "metrics.json")
    assert saved.outcome == COMPLETE_WITH_FAILURES
    assert saved.failures() == [
        ("ptq on inductor", "RuntimeError: CppCompileError: C++ compile error: g++ exited 1")
    ]


def test_rungs_left_out_of_the_spec_are_recorded_skipped(data, tmp_path) -> None:
    fw = LadderFramework()
    metrics = _run(fw, data, tmp_path, ['pytorch.runtimes=["executorch"]'])

    base = metrics.variants["baseline"]
    assert [(r.runtime, r.status) for r in base.rungs] == [
        ("inductor", "skipped"),
        ("executorch", "ok"),
    ]
    assert "pytorch.runtimes" in base.rungs[0].reason
    assert ("baseline", "inductor") not in fw.seen


def test_variants_left_out_of_rung_variants_record_every_rung_skipped(data, tmp_path) -> None:
    fw = LadderFramework()
    metrics = _run(fw, data, tmp_path, ["measure.rung_variants=[baseline,ptq]"])

    qat = metrics.variants["qat"]
    assert qat.status == "ok" and qat.accuracy is not None  # the variant itself is measured
    assert [(r.runtime, r.status) for r in qat.rungs] == [
        ("inductor", "skipped"),
        ("executorch", "skipped"),
    ]
    assert all("measure.rung_variants" in r.reason for r in qat.rungs)
    assert not [key for key in fw.seen if key[0] == "qat"]  # never lowered
    assert [r.status for r in metrics.variants["baseline"].rungs] == ["ok", "ok"]


def test_rung_variants_listed_twice_is_refused() -> None:
    from harness_contract.spec import SpecError

    with pytest.raises(SpecError, match=r"'measure\.rung_variants': lists ptq more than once"):
        build_spec("smoke", None, ["measure.rung_variants=[ptq,ptq]"])


def test_a_failed_phase_has_no_rungs(data, tmp_path) -> None:
    class NoPTQ(LadderFramework):
        def quantize_ptq(self, model, calibration):
            raise RuntimeError("calibration exploded")

    metrics = _run(NoPTQ(), data, tmp_path)

    assert metrics.variants["ptq"].status == "failed" and metrics.variants["ptq"].rungs == []
    assert [r.status for r in metrics.variants["qat"].rungs] == ["unavailable", "ok"]


def test_a_framework_without_rungs_records_its_runtime_only(data, tmp_path) -> None:
    metrics = _run(NumpyFramework(), data, tmp_path)

    assert all(v.rungs == [] for v in metrics.variants.values())
    assert metrics.support is None  # no probes module: nothing to probe


class OneBatch(Linear):
    """A model built for one batch size alone (as a static-shape compile under dynamo's
    fail_on_recompile stance): another number of images runs in chunks of its batch, the
    last padded, as a server built for that batch runs it. Counts the calls it serves."""

    def __init__(self, fp32: Linear, batch: int) -> None:
        super().__init__(fp32.w, fp32.b)
        self.batch, self.calls, self.other_sizes = batch, 0, 0

    def logits(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self.batch:
            self.other_sizes += 1
            chunks = [x[i : i + self.batch] for i in range(0, len(x), self.batch)]
            padded = [np.resize(c, (self.batch, *c.shape[1:])) for c in chunks]
            outs = [self.logits(p)[: len(c)] for p, c in zip(padded, chunks, strict=True)]
            return np.concatenate(outs)
        self.calls += 1
        return super().logits(x)


class PerBatchFramework(LadderFramework):
    """Plays Inductor: its baseline rung makes a model per latency batch size."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.made: dict[int, OneBatch] = {}
        self.fail_at = fail_at

    def lower(self, runtime: str, inputs: RungInputs) -> Lowered:
        lowered = super().lower(runtime, inputs)
        if (inputs.variant, runtime) == ("baseline", "inductor"):
            lowered.for_batch, lowered.compile_s = self.for_batch, None  # made per batch
        return lowered

    def for_batch(self, batch: int) -> tuple[OneBatch, float]:
        if batch == self.fail_at:
            raise RuntimeError(f"InductorError: no kernel for batch {batch}")
        self.made[batch] = OneBatch(self.seen[("baseline", "inductor")].fp32, batch)
        return self.made[batch], 0.25 * batch


def test_each_latency_batch_is_timed_on_the_model_made_for_it(data, tmp_path) -> None:
    """A rung is as fast as its runtime: a user serving batch B compiles for B, so the
    latency row at B comes from that model, and every such compile's seconds are kept."""
    fw = PerBatchFramework()
    metrics = _run(fw, data, tmp_path)

    inductor = metrics.variants["baseline"].rungs[0]
    assert inductor.status == "ok", inductor.reason
    assert sorted(fw.made) == [1, 16]  # once per batch size, before any timing
    assert all(model.calls >= 5 for model in fw.made.values())  # min_count timed calls each
    assert [row.batch_size for row in inductor.latency] == [1, 16]
    assert inductor.compile_s_by_batch == {1: 0.25, 16: 4.0}
    # Accuracy on a model that was timed: the largest batch's, whose compile is compile_s.
    assert inductor.accuracy.agreement_with_fp32 == 1.0 and inductor.compile_s == 4.0
    assert fw.made[16].other_sizes > 0 and fw.made[1].other_sizes == 0
    saved = read_metrics(tmp_path / "metrics.json").variants["baseline"].rungs[0]
    assert saved.compile_s_by_batch == {1: 0.25, 16: 4.0}  # int keys back from JSON
    # A rung whose one model serves every batch records no per-batch compile.
    assert metrics.variants["baseline"].rungs[1].compile_s_by_batch is None


def test_a_per_batch_compile_that_fails_fails_its_rung_only(data, tmp_path) -> None:
    fw = PerBatchFramework(fail_at=16)
    metrics = _run(fw, data, tmp_path)

    inductor = metrics.variants["baseline"].rungs[0]
    assert inductor.status == "failed"
    assert inductor.reason == "RuntimeError: InductorError: no kernel for batch 16"
    assert inductor.accuracy is None and inductor.latency == []  # never ran eager instead
    assert metrics.variants["baseline"].rungs[1].status == "ok"
