"""The report's runtime ladder: speed-ups only between rows of one runtime, one labelled
best-vs-best line per framework, the edge runtimes side by side (never divided), and
every rung that did not run shown with its reason."""

from __future__ import annotations

from harness.report import ReportData, build_report, render_markdown, results_frame
from harness_contract.metrics import COMPLETE_WITH_FAILURES, MetricsFile, RungMetrics

from .test_report_golden import _pytorch, _rung, _tensorflow


def _markdown(*metrics: MetricsFile) -> str:
    return render_markdown(build_report(ReportData.from_metrics(list(metrics))))


def _section(report: str, heading: str) -> str:
    return report.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _line(text: str, start: str) -> str:
    return next(x for x in text.splitlines() if x.startswith(start))


def _without_litert_rung(tf: MetricsFile) -> MetricsFile:
    tf = tf.model_copy(deep=True)
    tf.variants["baseline"].rungs = []
    return tf


def test_litert_int8_is_divided_by_litert_fp32_never_by_keras() -> None:
    sweep = _section(_markdown(_pytorch(), _tensorflow()), "Latency by batch size and threads")

    # 6.4 ms (LiteRT fp32) / 1.5 ms (LiteRT int8); Keras' 10 ms is not the divisor.
    row = _line(sweep, "| tensorflow | ptq | LiteRT (XNNPACK .tflite) | int8 | cpu | 2 (run's own)")
    assert row.endswith("| 4.27 | 4.27 |")
    keras = _line(sweep, "| tensorflow | baseline | Keras (tf.function) | fp32 | cpu | 2")
    assert keras.endswith("| — | — |")


def test_int8_without_an_fp32_row_on_its_runtime_is_not_compared() -> None:
    sweep = _section(
        _markdown(_pytorch(), _without_litert_rung(_tensorflow())),
        "Latency by batch size and threads",
    )

    row = _line(sweep, "| tensorflow | ptq | LiteRT (XNNPACK .tflite) | int8 | cpu | 2")
    assert row.endswith("| not compared: no fp32 on LiteRT (XNNPACK .tflite) " * 2 + "|")


def test_pytorch_speedups_stay_within_eager_inductor_and_executorch() -> None:
    ladder = _section(_markdown(_pytorch(), _tensorflow()), "Runtime ladder")

    # eager 9.8 / 2.9, Inductor 6.7 / 2.7, ExecuTorch 6.1 / 1.5 at batch 1.
    eager = _line(ladder, "| pytorch | ptq | PyTorch eager | int8 | ok")
    inductor = _line(ladder, "| pytorch | ptq | torch.compile (Inductor, freezing) | int8 | ok")
    edge = _line(ladder, "| pytorch | ptq | ExecuTorch (XNNPACK .pte) | int8 | ok")
    assert "| 3.38 | 3.38 |" in eager
    assert "| 2.48 | 2.48 |" in inductor
    assert "| 4.07 | 4.07 |" in edge


def test_best_vs_best_is_labelled_when_it_mixes_runtimes() -> None:
    pt = _pytorch()
    # Inductor fp32 now beats ExecuTorch fp32; ExecuTorch int8 stays the fastest int8.
    pt.variants["baseline"].rungs[0] = _rung(
        "inductor", "fp32", 5.0, 0.6125, 1.0, (44_700_000, "pt2"), 4.6
    )
    ladder = _section(_markdown(pt, _tensorflow()), "Runtime ladder")

    line = _line(ladder, "**pytorch, best deployable fp32 vs best int8")
    assert "(across runtimes, by design)" in line
    assert "torch.compile (Inductor, freezing) 5.00 ms" in line
    assert "ExecuTorch (XNNPACK .pte) (ptq) 1.50 ms" in line and "3.33x" in line
    assert "includes the change of runtime" in line
    same = _line(ladder, "**tensorflow, best deployable fp32 vs best int8")
    assert "both on LiteRT (XNNPACK .tflite), so like for like" in same and "4.27x" in same


def test_edge_runtimes_of_both_frameworks_sit_side_by_side_without_a_ratio() -> None:
    ladder = _section(_markdown(_pytorch(), _tensorflow()), "Runtime ladder")

    edge = ladder.split("*Edge to edge: ExecuTorch and LiteRT:*", 1)[1]
    header = _line(edge, "| Variant |")
    assert "speed-up" not in header and "(x)" not in header
    assert "| ptq | int8 | pytorch | ExecuTorch (XNNPACK .pte) | ok | 10.70 |" in edge
    assert "| ptq | int8 | tensorflow | LiteRT (XNNPACK .tflite) | ok | 10.77 |" in edge
    assert "No ratio is taken across frameworks." in edge


def test_a_rung_that_did_not_run_says_why_and_a_failed_one_fails_the_run() -> None:
    pt = _pytorch()
    pt.variants["ptq"].rungs[0] = RungMetrics(
        runtime="inductor",
        precision="int8",
        status="failed",
        reason="CppCompileError: C++ compile error",
    )
    report = _markdown(pt, _tensorflow())

    assert pt.outcome == COMPLETE_WITH_FAILURES
    status = _section(report, "Status")
    assert "**pytorch / ptq on inductor** failed: CppCompileError: C++ compile error" in status
    ladder = _section(report, "Runtime ladder")
    assert (
        "**pytorch qat on ExecuTorch (XNNPACK .pte):** unavailable — executorch is not "
        "installed; install it: pip install executorch==1.5.1"
    ) in ladder
    frame = results_frame([pt, _tensorflow()])
    rung = frame[(frame["variant"] == "ptq") & (frame["runtime"] == "inductor")].iloc[0]
    assert (rung["runtime_role"], rung["status"]) == ("rung", "failed")
    # results.csv: each variant's own row first, then its rungs, framework by framework.
    pytorch = frame[frame["framework"] == "pytorch"]
    assert list(zip(pytorch["variant"], pytorch["runtime"], strict=True))[:4] == [
        ("baseline", "eager"),
        ("baseline", "inductor"),
        ("baseline", "executorch"),
        ("ptq", "eager"),
    ]


def test_each_p50_carries_its_bootstrap_interval_from_the_raw_samples(tmp_path) -> None:
    import numpy as np

    from harness.report import write_report
    from harness.results.stats import median_interval
    from harness_contract.metrics import write_metrics

    pt = _pytorch()
    samples = np.random.default_rng(7).gamma(40.0, 9.8 / 40.0, 300)
    base = pt.variants["baseline"]
    base.latency[0] = base.latency[0].model_copy(
        update={"samples_file": "artifacts/b1.npy", "p50_ms": float(np.median(samples))}
    )
    (tmp_path / "pytorch" / "artifacts").mkdir(parents=True)
    np.save(tmp_path / "pytorch" / "artifacts" / "b1.npy", samples)
    write_metrics(tmp_path / "pytorch" / "metrics.json", pt)

    report = write_report(tmp_path).md.read_text()

    low, high = median_interval(samples)
    assert low < float(np.median(samples)) < high
    line = _line(report, "| pytorch | baseline | PyTorch eager | fp32 | 1 |")
    assert f"| {low:.2f}–{high:.2f} |" in line
    # Without its samples (a row whose file is gone) the cell says nothing rather than guess.
    other = _line(report, "| pytorch | baseline | PyTorch eager | fp32 | 8 |")
    assert other.split(" | ")[6] == "—"


def test_inductor_shows_each_static_compile_its_latency_ran_on() -> None:
    pt = _pytorch()
    pt.variants["baseline"].rungs[0].compile_s_by_batch = {32: 3.0, 1: 2.5}
    ladder = _section(_markdown(pt, _tensorflow()), "Runtime ladder")

    inductor = _line(ladder, "| pytorch | baseline | torch.compile (Inductor, freezing) | fp32")
    assert "| 4.6 | 2.5 (b1), 3.0 (b32) |" in inductor  # accuracy's compile, then per batch
    edge = _line(ladder, "| pytorch | baseline | ExecuTorch (XNNPACK .pte) | fp32")
    assert "| 6.2 | — |" in edge  # one .pte serves every batch
    csv = results_frame([pt, _tensorflow()]).set_index(["framework", "variant", "runtime"])
    assert csv.loc[("pytorch", "baseline", "inductor"), "compile_per_batch_s"] == 5.5
    assert csv["compile_per_batch_s"].isna().sum() == len(csv) - 3  # the Inductor rungs only
