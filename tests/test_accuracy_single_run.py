"""One run can already say something (issue 17, item 4): the runner records, per variant,
the test images only it or only fp32 classifies correctly; the host turns them into
McNemar's exact test of the int8 variant's change, and every top-1 gets a Wilson interval
for its test-set size; the report shows both."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from harness.report import ReportData, build_report, render_markdown
from harness_contract.metrics import MetricsFile
from harness_contract.metrics.figures import AccuracyStats
from harness_contract.study.measurement import accuracy
from tests.test_report import make_metrics


def test_the_runner_records_the_discordant_images_against_fp32() -> None:
    labels = np.array([0, 1, 2, 3, 4, 5])
    fp32 = np.array([0, 1, 2, 9, 9, 5])  # right on 0, 1, 2, 5
    int8 = np.array([0, 1, 9, 3, 9, 9])  # right on 0, 1, 3: gains 3, loses 2 and 5
    logits = np.eye(10)[int8]
    got = accuracy(logits, labels, "cpu", fp32)
    assert (got.only_this_correct, got.only_fp32_correct) == (1, 2)
    assert got.top1 == pytest.approx(3 / 6) and got.agreement_with_fp32 == pytest.approx(3 / 6)
    alone = accuracy(logits, labels, "cpu")  # the baseline itself: nothing to compare
    assert (alone.only_this_correct, alone.only_fp32_correct) == (None, None)


def test_metrics_without_the_counts_still_load() -> None:
    old = AccuracyStats.model_validate({"top1": 0.8, "n": 500, "device": "cpu"})
    assert old.only_this_correct is None and old.only_fp32_correct is None


def _metrics() -> MetricsFile:
    m = make_metrics()
    m.variants["baseline"].accuracy = AccuracyStats(top1=0.812, n=1000, device="cpu")
    m.variants["ptq"].accuracy = AccuracyStats(
        top1=0.805, n=1000, device="cpu", agreement_with_fp32=0.97,
        only_this_correct=10, only_fp32_correct=17,
    )  # fmt: skip
    m.variants["qat"].accuracy = AccuracyStats(top1=0.81, n=1000, device="cpu")  # an old file
    return m


def test_the_frame_carries_wilson_change_and_mcnemar() -> None:
    frame = ReportData.from_metrics([_metrics()]).frame
    rows = {r["variant"]: r for _, r in frame.iterrows()}
    low, high = proportion_confint(805, 1000, alpha=0.05, method="wilson")
    ptq = rows["ptq"]
    assert (ptq["accuracy_ci_low_pct"], ptq["accuracy_ci_high_pct"]) == pytest.approx(
        (low * 100, high * 100)
    )
    assert ptq["accuracy_change_pp"] == pytest.approx(-0.7)
    assert ptq["accuracy_mcnemar_p"] == pytest.approx(binomtest(10, 27, 0.5).pvalue)
    assert np.isnan(rows["baseline"]["accuracy_mcnemar_p"])
    assert np.isnan(rows["baseline"]["accuracy_change_pp"])
    assert rows["qat"]["accuracy_change_pp"] == pytest.approx(-0.2)
    assert np.isnan(rows["qat"]["accuracy_mcnemar_p"])  # no counts recorded
    assert 0 <= rows["qat"]["accuracy_ci_low_pct"] <= rows["qat"]["accuracy_ci_high_pct"] <= 100


def test_the_accuracy_table_shows_the_interval_and_the_test() -> None:
    md = render_markdown(build_report(ReportData.from_metrics([_metrics()])))
    section = md.split("## Accuracy", 1)[1].split("\n## ", 1)[0]
    assert "Top-1 95% interval, Wilson (%)" in section
    assert "Change vs fp32 (points)" in section and "McNemar p, exact" in section
    low, high = proportion_confint(805, 1000, alpha=0.05, method="wilson")
    p = binomtest(10, 27, 0.5).pvalue
    assert f"| 80.50 | {low * 100:.2f}–{high * 100:.2f} | -0.70 | {p:.3f} |" in section
    assert "McNemar" in section.split("|", 1)[0]  # the how-to-read names the test


def test_the_runtime_ladder_shows_each_rungs_interval_and_test() -> None:
    from harness.report.sections_ladder import ladder_table
    from harness_contract.metrics import RungMetrics

    m = _metrics()
    m.variants["ptq"].rungs = [
        RungMetrics(
            runtime="inductor", precision="int8", status="ok",
            accuracy=AccuracyStats(
                top1=0.79, n=1000, device="cpu", agreement_with_fp32=0.95,
                only_this_correct=3, only_fp32_correct=25,
            ),
        )
    ]  # fmt: skip
    table = ladder_table(ReportData.from_metrics([m]))
    assert "Top-1 95% interval, Wilson (%)" in table.headers
    assert "McNemar p vs fp32, exact" in table.headers
    rung = next(r for r in table.cells() if "Inductor" in r[2])
    low, high = proportion_confint(790, 1000, alpha=0.05, method="wilson")
    assert f"{low * 100:.2f}–{high * 100:.2f}" in rung
    assert "<0.001" in rung  # 3 against 25 discordant images
