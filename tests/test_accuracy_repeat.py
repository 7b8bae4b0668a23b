"""A top-1 that is not a property of the model says so. PyTorch 2.13's oneDNN int8 1x1
stride-2 conv (``jit_uni_int8_1x1:avx2``) gives different uint8 outputs on identical
calls with 2 threads on an AVX2 CPU, so the same PT2E int8 model's agreement with fp32
read 0.71 in one evaluation and 0.73 in the next (CI, December 2026). Every measured
model's first evaluation batch is therefore run twice; a difference is recorded and the
report names the model under its accuracy tables."""

from __future__ import annotations

from pathlib import Path

from harness.report import ReportData, build_report, render_markdown
from harness.report.sections_ladder import ladder_table
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import RungMetrics
from harness_contract.metrics.figures import AccuracyStats, RepeatCheck
from harness_contract.study.measurement import Measurement
from tests.test_report import make_metrics

from .numpy_framework import NumpyFramework
from .study_units import tiny_data, tiny_spec


class Jittery(NumpyFramework):
    """Every call after the first adds a different offset to the logits of image 0, large
    enough to change its predicted class (what a racing kernel does to a near tie)."""

    calls = 0

    def predict(self, model, images):  # noqa: ANN001, ANN201
        out = super().predict(model, images).copy()
        if self.calls:
            out[0, (out[0].argmax() + 1) % out.shape[1]] += 100.0 * self.calls
        self.calls += 1
        return out


def _measurement(fw: NumpyFramework, tmp_path: Path, threads: int = 2) -> Measurement:
    spec = tiny_spec("measure.eval_batch_size=32")
    fw.setup(spec, threads)
    return Measurement(fw, tiny_data(), spec.measure, FrameworkDir(tmp_path), threads)


def test_a_model_that_repeats_exactly_records_no_difference(tmp_path: Path) -> None:
    fw = NumpyFramework()
    stats = _measurement(fw, tmp_path).accuracy(fw.build(None))
    assert stats.repeat == RepeatCheck(
        images=32, threads=2, max_abs_diff=0.0, changed_predictions=0
    )


def test_a_model_whose_identical_calls_differ_is_recorded(tmp_path: Path) -> None:
    fw = Jittery()
    m = _measurement(fw, tmp_path)
    stats = m.accuracy(fw.build(None))
    assert stats.repeat is not None
    assert stats.repeat.images == 32 and stats.repeat.threads == 2
    assert stats.repeat.max_abs_diff >= 100.0
    assert stats.repeat.changed_predictions == 1


def test_logits_already_predicted_are_not_predicted_again_for_top1(tmp_path: Path) -> None:
    fw = Jittery()
    m = _measurement(fw, tmp_path)
    model = fw.build(None)
    logits = m.predict(model)
    fw.calls = 0  # the next call is the repeat only
    stats = m.accuracy(model, logits=logits)
    assert fw.calls == 1 and stats.repeat.max_abs_diff == 0.0


def test_files_from_before_the_check_still_load() -> None:
    old = AccuracyStats.model_validate({"top1": 0.8, "n": 500, "device": "cpu"})
    assert old.repeat is None


def _metrics(diff: float):  # noqa: ANN202
    m = make_metrics()
    for name in ("baseline", "ptq", "qat"):
        m.variants[name].accuracy = AccuracyStats(
            top1=0.8, n=1000, device="cpu",
            repeat=RepeatCheck(images=256, threads=2, max_abs_diff=0.0, changed_predictions=0),
        )  # fmt: skip
    m.variants["ptq"].accuracy.repeat = RepeatCheck(
        images=256, threads=2, max_abs_diff=diff, changed_predictions=3 if diff else 0
    )
    return m


def test_the_accuracy_table_names_a_model_that_did_not_repeat() -> None:
    md = render_markdown(build_report(ReportData.from_metrics([_metrics(0.41)])))
    section = md.split("## Accuracy", 1)[1].split("\n## ", 1)[0]
    assert "does not depend on threads" not in section
    assert "first 256 test images differ (largest logit difference 0.41, 3 predicted" in section
    assert "at 2 thread(s)" in section
    assert (
        section.count("two identical calls on its first") == 1
    )  # ptq only: the others repeated exactly


def test_nothing_is_said_when_every_model_repeated() -> None:
    md = render_markdown(build_report(ReportData.from_metrics([_metrics(0.0)])))
    section = md.split("## Accuracy", 1)[1].split("\n## ", 1)[0]
    assert "two identical calls on its first" not in section


def test_results_csv_carries_the_check() -> None:
    frame = ReportData.from_metrics([_metrics(0.41)]).frame
    ptq = frame[frame["variant"] == "ptq"].iloc[0]
    assert ptq["accuracy_repeat_max_abs_diff"] == 0.41
    assert (ptq["accuracy_repeat_changed"], ptq["accuracy_repeat_threads"]) == (3, 2)


def test_the_runtime_ladder_names_a_rung_that_did_not_repeat() -> None:
    m = _metrics(0.0)
    m.variants["ptq"].rungs = [
        RungMetrics(
            runtime="inductor", precision="int8", status="ok",
            accuracy=AccuracyStats(
                top1=0.79, n=1000, device="cpu",
                repeat=RepeatCheck(images=256, threads=2, max_abs_diff=0.5, changed_predictions=1),
            ),
        )
    ]  # fmt: skip
    table = ladder_table(ReportData.from_metrics([m]))
    assert table is not None
    assert [n for n in table.notes if "on inductor" in n and "two identical calls" in n]
