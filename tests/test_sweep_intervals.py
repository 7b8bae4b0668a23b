"""The sweep's intervals at the right unit (issue 17, items 1-3 and 6): latency over the
runs' p50s, never over pooled calls; contended runs left out of latency and named; zero
spread reported as such; every cell's comparisons Holm-adjusted beside the unadjusted
verdicts; and a report whose headers say which is which."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import t, ttest_rel
from statsmodels.stats.multitest import multipletests

from harness.results.stats import median_interval
from harness.sweep.aggregate import compute
from harness.sweep.index import PointRecord, SweepDir, SweepSettings
from harness.sweep.plan import SweepSpec
from harness.sweep.render import write_report
from harness_contract.metrics import write_metrics
from tests.fake_runner import metrics_for

SEEDS = [0, 1, 2, 3]
TOP1 = {  # framework -> variant -> top-1 per seed
    "pytorch": {
        "baseline": [0.800, 0.820, 0.790, 0.810],
        "ptq": [0.798, 0.818, 0.788, 0.808],  # exactly 0.2 points under, every seed
        "qat": [0.810, 0.830, 0.800, 0.815],
    },
    "tensorflow": {
        "baseline": [0.780, 0.830, 0.800, 0.790],
        "ptq": [0.700, 0.710, 0.690, 0.705],
        "qat": [0.790, 0.800, 0.810, 0.795],
    },
}


def _sweep(
    tmp_path: Path,
    seeds: list[int] = SEEDS,
    loads: dict[str, float] | None = None,
    top1: dict[str, dict[str, list[float]]] = TOP1,
    nodes: dict[str, str] | None = None,
) -> tuple[SweepDir, dict[str, PointRecord]]:
    """Points as a real sweep leaves them; ``loads`` sets a point's load average while
    timing (on its 2 cores), ``nodes`` the node a point ran on (default: none recorded,
    the runner's hostname)."""
    sweep = SweepDir.create(tmp_path, "s")
    records = {}
    for framework, variants in top1.items():
        for i, seed in enumerate(seeds):
            name = f"{framework}-seed{seed}"
            out = sweep.point_dir(name) / framework
            out.mkdir(parents=True)
            metrics = metrics_for(framework, name, out=out)
            metrics.seed = seed
            for variant, values in variants.items():
                v = metrics.variants[variant]
                v.accuracy.top1 = values[i]
                for lat in v.latency:
                    lat.load_1m = (loads or {}).get(name, 0.5)
            write_metrics(out / "metrics.json", metrics)
            records[name] = PointRecord(
                name, framework, seed, [], status="ok", attempts=1, node=(nodes or {}).get(name)
            )
    return sweep, records


def _row(rows, **want):  # noqa: ANN001, ANN202
    found = [r for r in rows if all(getattr(r, k) == v for k, v in want.items())]
    assert len(found) == 1, (want, found)
    return found[0]


def _p50s(sweep: SweepDir, framework: str, variant: str, seeds: list[int]) -> list[float]:
    out = []
    for seed in seeds:
        path = sweep.point_dir(f"{framework}-seed{seed}") / framework / "metrics.json"
        body = json.loads(path.read_text())
        out.append(body["variants"][variant]["latency"][0]["p50_ms"])
    return out


def test_latency_is_an_interval_over_the_runs_p50s_not_their_pooled_calls(
    tmp_path: Path,
) -> None:
    sweep, records = _sweep(tmp_path)
    row = _row(compute(sweep, records).latency, framework="pytorch", variant="ptq", batch_size=1)
    p50s = np.array(_p50s(sweep, "pytorch", "ptq", SEEDS))
    sem = p50s.std(ddof=1) / math.sqrt(len(p50s))
    low, high = t.interval(0.95, len(p50s) - 1, loc=p50s.mean(), scale=sem)
    assert row.runs == 4 and row.p50_ms == pytest.approx(p50s.mean())
    assert (row.low_ms, row.high_ms) == pytest.approx((low, high))
    assert row.basis == "t over 4 runs' p50"


def test_one_run_alone_gets_its_own_bootstrap_labelled_within_one_run(tmp_path: Path) -> None:
    sweep, records = _sweep(tmp_path, seeds=[0])
    row = _row(compute(sweep, records).latency, framework="tensorflow", variant="qat")
    samples = np.load(
        sweep.point_dir("tensorflow-seed0") / "tensorflow/artifacts/latency-qat-b1.npy"
    )
    assert row.runs == 1 and row.p50_ms == pytest.approx(_p50s(sweep, "tensorflow", "qat", [0])[0])
    assert (row.low_ms, row.high_ms) == pytest.approx(median_interval(samples))
    assert row.basis == f"within one run (bootstrap of its {samples.size} calls)"


def test_contended_runs_are_left_out_of_latency_and_named(tmp_path: Path) -> None:
    sweep, records = _sweep(tmp_path, loads={"pytorch-seed2": 5.0})
    result = compute(sweep, records)
    row = _row(result.latency, framework="pytorch", variant="baseline", batch_size=1)
    quiet = np.array(_p50s(sweep, "pytorch", "baseline", [0, 1, 3]))
    assert row.runs == 3 and row.p50_ms == pytest.approx(quiet.mean())
    assert row.excluded == ["pytorch-seed2 (load 5.0 on 2 cores)"]
    tf = _row(result.latency, framework="tensorflow", variant="baseline", batch_size=1)
    assert tf.runs == 4 and tf.excluded == []
    # Accuracy does not depend on load: the contended run still counts there.
    top1 = _row(result.summary, framework="pytorch", variant="baseline", metric="top1_pct")
    assert top1.n == 4
    md = write_report(sweep, SweepSpec(seeds=SEEDS), SweepSettings(), records, result).md
    text = md.read_text()
    assert "## Contended runs, left out of latency" in text
    assert "pytorch-seed2 (load 5.0 on 2 cores)" in text


def test_zero_spread_is_said_and_gets_no_verdict(tmp_path: Path) -> None:
    sweep, records = _sweep(tmp_path)
    result = compute(sweep, records)
    row = _row(result.differences, comparison="ptq - baseline", within="pytorch")
    assert row.mean == pytest.approx(-0.2) and (row.low, row.high) == (None, None)
    assert row.verdict == "no spread observed (n = 4)"
    assert row.p_value is None and row.holm_verdict is None
    text = write_report(sweep, SweepSpec(seeds=SEEDS), SweepSettings(), records, result).md
    assert "no spread observed (n = 4)" in text.read_text()


def test_two_seeds_give_no_verdict(tmp_path: Path) -> None:
    sweep, records = _sweep(tmp_path, seeds=[0, 1])
    result = compute(sweep, records)
    for row in result.differences:
        assert row.verdict.startswith(("too few pairs to judge (n = 2", "no spread observed"))
        assert row.holm_verdict is None


def test_each_cells_comparisons_are_holm_adjusted_beside_the_raw_verdicts(tmp_path: Path) -> None:
    sweep, records = _sweep(tmp_path)
    result = compute(sweep, records)
    tested = [r for r in result.differences if r.p_value is not None]
    assert len(result.differences) == 7 and len(tested) == 6  # PyTorch PTQ has no spread
    for r in tested:
        a, b = r.comparison.split(" - ")
        if r.comparison == "pytorch - tensorflow":
            left, right = TOP1["pytorch"][r.within], TOP1["tensorflow"][r.within]
        else:
            left, right = TOP1[r.within][a], TOP1[r.within][b]
        expected = ttest_rel(np.array(left) * 100, np.array(right) * 100).pvalue
        assert r.p_value == pytest.approx(expected)
    reject, adjusted, _, _ = multipletests([r.p_value for r in tested], 0.05, method="holm")
    for r, keep, p in zip(tested, reject, adjusted, strict=True):
        assert r.p_holm == pytest.approx(p)
        assert r.holm_verdict == ("distinguishable" if keep else "not distinguishable")
    paths = write_report(sweep, SweepSpec(seeds=SEEDS), SweepSettings(), records, result)
    text = paths.md.read_text()
    assert "verdict (per comparison, unadjusted)" in text
    assert "Holm verdict (across the cell's tested comparisons)" in text
    assert "comparisons tested in cell" in text
    assert "p (paired t)" in text


def test_the_report_says_what_each_latency_interval_resampled(tmp_path: Path) -> None:
    sweep, records = _sweep(tmp_path)
    result = compute(sweep, records)
    paths = write_report(sweep, SweepSpec(seeds=SEEDS), SweepSettings(), records, result)
    text = paths.md.read_text()
    assert "t over 4 runs' p50" in text
    assert "pooled" not in text
    svg = next(p for p in paths.figures if p.name.startswith("latency")).read_text()
    assert "whiskers: 95% t interval over the runs' p50" in html.unescape(svg)


def test_a_percentage_interval_is_clipped_and_says_so(tmp_path: Path) -> None:
    near_100 = {fw: {v: [0.999, 0.990] for v in variants} for fw, variants in TOP1.items()}
    sweep, records = _sweep(tmp_path, seeds=[0, 1], top1=near_100)
    result = compute(sweep, records)
    top1 = _row(result.summary, framework="pytorch", variant="ptq", metric="top1_pct")
    assert top1.high == 100.0 and top1.low > 90.0  # t(0.975, 1) would reach 105 %
    assert top1.note == "clipped to [0, 100] %"
    agreement = _row(result.summary, framework="pytorch", variant="qat", metric="agreement_pct")
    assert agreement.note == "no spread observed (n = 2)"  # 90 % in every fake run
    text = write_report(sweep, SweepSpec(seeds=[0, 1]), SweepSettings(), records, result).md
    assert "clipped to [0, 100] %" in text.read_text()


def test_latency_names_its_hosts_and_flags_frameworks_timed_on_different_ones(
    tmp_path: Path,
) -> None:
    nodes = {f"pytorch-seed{s}": "node-a (10.0.0.1)" for s in SEEDS}
    nodes |= {f"tensorflow-seed{s}": "node-b (10.0.0.2)" for s in SEEDS}
    nodes["tensorflow-seed3"] = "node-a (10.0.0.1)"
    sweep, records = _sweep(tmp_path, nodes=nodes)
    result = compute(sweep, records)
    torch_row = _row(result.latency, framework="pytorch", variant="ptq", batch_size=1)
    tf_row = _row(result.latency, framework="tensorflow", variant="ptq", batch_size=1)
    assert torch_row.hosts == ["node-a (10.0.0.1)"]
    assert tf_row.hosts == ["node-a (10.0.0.1)", "node-b (10.0.0.2)"]
    assert "runs timed on 2 hosts" in tf_row.note and torch_row.note is None
    for row in (torch_row, tf_row):
        assert row.placement == (
            "frameworks timed on different hosts (pytorch on node-a (10.0.0.1); "
            "tensorflow on node-a (10.0.0.1), node-b (10.0.0.2))"
        )
    text = write_report(sweep, SweepSpec(seeds=SEEDS), SweepSettings(), records, result).md
    assert "frameworks timed on different hosts" in text.read_text()


def test_latency_on_one_host_is_not_flagged(tmp_path: Path) -> None:
    sweep, records = _sweep(tmp_path)  # every point on this machine, no node recorded
    rows = compute(sweep, records).latency
    assert all(r.placement is None and len(r.hosts) == 1 for r in rows)
