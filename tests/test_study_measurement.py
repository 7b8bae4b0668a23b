"""The measurement unit on its own: accuracy, size and artifact digests, and the latency
sweep with raw samples."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness_contract.fs.digests import sha256_file
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import VariantMetrics
from harness_contract.study.framework import Saved, ThreadsUnsupported
from harness_contract.study.measurement import Measurement, accuracy, latency_images, time_forward

from .numpy_framework import NumpyFramework
from .study_units import tiny_data, tiny_spec


def _measurement(fw, tmp_path: Path, threads: int = 1, *extra: str, part=None) -> Measurement:
    spec = tiny_spec(*extra)
    fw.setup(spec, threads)
    kwargs = {"part": part} if part else {}
    return Measurement(fw, tiny_data(), spec.measure, FrameworkDir(tmp_path), threads, **kwargs)


def test_accuracy_counts_hits_and_agreement_with_fp32() -> None:
    logits = np.eye(4)[[0, 1, 2, 3]]
    stats = accuracy(logits, np.array([0, 1, 2, 0]), "cpu", fp32_predictions=np.array([0, 1, 0, 0]))
    assert (stats.top1, stats.n, stats.device) == (0.75, 4, "cpu")
    assert stats.agreement_with_fp32 == 0.5
    assert accuracy(logits, np.zeros(4, int), "cpu").agreement_with_fp32 is None


def test_predict_covers_the_whole_test_split_in_uneven_batches(tmp_path: Path) -> None:
    sizes: list[int] = []
    fw = NumpyFramework()
    predict = fw.predict

    def counted(model, images):
        sizes.append(len(images))
        return predict(model, images)

    fw.predict = counted
    m = _measurement(fw, tmp_path, 1, "measure.eval_batch_size=32")
    logits = m.predict(fw.build(None))
    assert logits.shape == (70, 10) and sizes == [32, 32, 6]


def test_measure_saves_the_model_and_times_each_batch_size_with_its_samples(
    tmp_path: Path,
) -> None:
    fw = NumpyFramework()
    m = _measurement(fw, tmp_path)
    variant = VariantMetrics(variant="baseline", status="ok", precision="fp32")
    m.measure(fw.build(None), variant, "baseline")
    assert variant.size.file == "baseline.npz" and (tmp_path / "artifacts/baseline.npz").is_file()
    assert [(lat.batch_size, lat.threads) for lat in variant.latency] == [(1, 1), (16, 1)]
    for lat in variant.latency:
        assert lat.samples_file == f"artifacts/latency-baseline-b{lat.batch_size}.npy"
        assert np.load(tmp_path / lat.samples_file).size == lat.n >= 5


def test_measure_digests_every_saved_file_and_no_latency_sample(tmp_path: Path) -> None:
    fw = NumpyFramework()
    m = _measurement(fw, tmp_path)
    variant = VariantMetrics(variant="ptq", status="ok", precision="int8")
    m.measure(fw.build(None), variant, "ptq")
    (artifact,) = variant.artifacts
    path = tmp_path / "artifacts/ptq.npz"
    assert artifact.file == "artifacts/ptq.npz" and artifact.bytes == path.stat().st_size
    assert artifact.sha256 == sha256_file(path)
    assert any(p.name.startswith("latency-ptq") for p in path.parent.iterdir())


class TwoFormats(NumpyFramework):
    """Saves the model twice, the second time as a folder of files (a SavedModel's shape)."""

    def save(self, model, directory: Path, stem: str) -> Saved:
        saved = super().save(model, directory, stem)
        folder = directory / f"{stem}_saved"
        (folder / "variables").mkdir(parents=True, exist_ok=True)
        (folder / "saved_model.pb").write_bytes(b"graph")
        np.save(folder / "variables" / "w.npy", model.w)
        return Saved(saved.size, (folder, *saved.files))


def test_a_saved_folder_is_digested_file_by_file_in_name_order(tmp_path: Path) -> None:
    fw = TwoFormats()
    m = _measurement(fw, tmp_path)
    variant = VariantMetrics(variant="baseline", status="ok", precision="fp32")
    m.measure(fw.build(None), variant, "baseline")
    assert [a.file for a in variant.artifacts] == [
        "artifacts/baseline.npz",
        "artifacts/baseline_saved/saved_model.pb",
        "artifacts/baseline_saved/variables/w.npy",
    ]


class ForgetsItsFile(NumpyFramework):
    def save(self, model, directory: Path, stem: str) -> Saved:
        return Saved(super().save(model, directory, stem).size, ())


def test_a_save_that_does_not_list_its_own_sized_file_is_a_runner_bug(tmp_path: Path) -> None:
    fw = ForgetsItsFile()
    m = _measurement(fw, tmp_path)
    variant = VariantMetrics(variant="baseline", status="ok", precision="fp32")
    with pytest.raises(RuntimeError, match="did not list its own file baseline.npz"):
        m.measure(fw.build(None), variant, "baseline")


class Threaded(NumpyFramework):
    def __init__(self, refuse: bool) -> None:
        self.refuse, self.switched = refuse, []

    @contextlib.contextmanager
    def threads_for(self, model, threads) -> Iterator[None]:
        if self.refuse:
            raise ThreadsUnsupported("fixed when the runtime starts")
        self.switched.append(threads)
        yield


@pytest.mark.parametrize("refuse", [False, True])
def test_the_one_thread_sweep_adds_rows_or_a_note(refuse: bool, tmp_path: Path) -> None:
    fw = Threaded(refuse)
    m = _measurement(fw, tmp_path, 4)
    variant = VariantMetrics(variant="ptq", status="ok", precision="int8")
    m.measure(fw.build(None), variant, "ptq")
    rows = [(lat.batch_size, lat.threads) for lat in variant.latency]
    if refuse:
        assert rows == [(1, 4), (16, 4)]
        assert variant.notes == ["no latency at 1 thread(s): fixed when the runtime starts"]
    else:
        assert rows == [(1, 4), (16, 4), (1, 1), (16, 1)] and fw.switched == [1]
        assert variant.latency[-1].samples_file == "artifacts/latency-ptq-b16-t1.npy"


def test_every_inference_runs_inside_the_part(tmp_path: Path) -> None:
    entered: list[str] = []

    @contextlib.contextmanager
    def part() -> Iterator[None]:
        entered.append("inference")
        yield

    fw = NumpyFramework()
    m = _measurement(fw, tmp_path, 1, part=part)
    m.predict(fw.build(None))
    m.measure(fw.build(None), VariantMetrics(variant="qat", status="ok", precision="int8"), "qat")
    assert entered == ["inference", "inference"]  # evaluation, then the latency rows


def test_time_forward_times_the_prepared_batch(tmp_path: Path) -> None:
    fw = NumpyFramework()
    spec = tiny_spec()
    fw.setup(spec, 1)
    images = latency_images(tiny_data(test=25), 40)  # test images, repeated to fill the batch
    assert images.shape == (40, 32, 32, 3)
    run = time_forward(fw, fw.build(None), images, spec.measure.latency, threads=1)
    assert run.stats.batch_size == 40 and run.samples_ms.size == run.stats.n
