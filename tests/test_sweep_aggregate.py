"""The sweep statistics from points' metrics.json files whose figures we chose: means and
t intervals over seeds, paired differences by seed, latency over the runs' p50s, and the
report files written from them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import t

from harness.sweep.aggregate import compute
from harness.sweep.index import PointRecord, SweepDir, SweepSettings
from harness.sweep.plan import SweepSpec, expand
from harness.sweep.render import write_report
from harness_contract.metrics import write_metrics
from harness_contract.metrics.figures import TrainingStats
from tests.fake_runner import metrics_for

SEEDS = [0, 1, 2]
# framework -> variant -> top-1 per seed
TOP1 = {
    "pytorch": {
        "baseline": [0.80, 0.82, 0.79],
        "ptq": [0.795, 0.815, 0.785],
        "qat": [0.81, 0.83, 0.80],
    },
    "tensorflow": {
        "baseline": [0.78, 0.83, 0.80],
        "ptq": [0.70, 0.71, 0.69],
        "qat": [0.79, 0.80, 0.81],
    },
}


def _sweep(tmp_path: Path) -> tuple[SweepDir, dict[str, PointRecord]]:
    sweep = SweepDir.create(tmp_path, "s")
    records = {}
    for framework, variants in TOP1.items():
        for i, seed in enumerate(SEEDS):
            name = f"{framework}-seed{seed}"
            out = sweep.point_dir(name) / framework
            out.mkdir(parents=True)
            metrics = metrics_for(framework, name, out=out)
            metrics.seed = seed
            for variant, values in variants.items():
                metrics.variants[variant].accuracy.top1 = values[i]
                metrics.variants[variant].training = TrainingStats(
                    device="cpu", threads=1, epochs=1, wall_s=10.0 + seed, images=1, images_per_s=1
                )
            write_metrics(out / "metrics.json", metrics)
            records[name] = PointRecord(name, framework, seed, [], status="ok", attempts=1)
    records["pytorch-seed9"] = PointRecord("pytorch-seed9", "pytorch", 9, [], status="failed")
    return sweep, records


def _row(rows, **want):  # noqa: ANN001, ANN202
    found = [r for r in rows if all(getattr(r, k) == v for k, v in want.items())]
    assert len(found) == 1, (want, found)
    return found[0]


def test_means_and_intervals_over_seeds(tmp_path: Path) -> None:
    sweep, records = _sweep(tmp_path)
    result = compute(sweep, records)
    values = np.array(TOP1["tensorflow"]["ptq"]) * 100
    row = _row(result.summary, framework="tensorflow", variant="ptq", metric="top1_pct")
    low, high = t.interval(0.95, 2, loc=values.mean(), scale=values.std(ddof=1) / math.sqrt(3))
    assert (row.n, row.seeds) == (3, SEEDS)
    assert (row.mean, row.low, row.high) == pytest.approx((values.mean(), low, high))
    train = _row(result.summary, framework="pytorch", variant="baseline", metric="train_s")
    assert train.mean == pytest.approx(11.0) and train.sd == pytest.approx(1.0)
    agreement = _row(result.summary, framework="pytorch", variant="qat", metric="agreement_pct")
    assert agreement.mean == pytest.approx(90.0) and agreement.sd == pytest.approx(0.0)
    assert result.points == {"ok": 6, "failed": 1}


def test_paired_differences_pair_by_seed_and_say_what_they_show(tmp_path: Path) -> None:
    sweep, records = _sweep(tmp_path)
    result = compute(sweep, records)
    ptq = _row(result.differences, comparison="ptq - baseline", within="tensorflow")
    diff = (np.array(TOP1["tensorflow"]["ptq"]) - TOP1["tensorflow"]["baseline"]) * 100
    half = t.ppf(0.975, 2) * diff.std(ddof=1) / math.sqrt(3)
    assert ptq.mean == pytest.approx(diff.mean())
    assert (ptq.low, ptq.high) == pytest.approx((diff.mean() - half, diff.mean() + half))
    assert ptq.verdict == "distinguishable from zero"
    # PyTorch's PTQ is always exactly half a point under its baseline: no spread at all,
    # which is not certainty.
    torch_ptq = _row(result.differences, comparison="ptq - baseline", within="pytorch")
    assert torch_ptq.mean == pytest.approx(-0.5) and torch_ptq.sd == 0.0
    assert torch_ptq.verdict == "no spread observed (n = 3)"
    frameworks = _row(result.differences, comparison="pytorch - tensorflow", within="baseline")
    assert frameworks.verdict == "not distinguishable from zero at 3 seeds"
    assert len(result.differences) == 4 + 3


def test_latency_is_the_mean_of_the_runs_p50s_with_a_t_interval_over_them(
    tmp_path: Path,
) -> None:
    sweep, records = _sweep(tmp_path)
    result = compute(sweep, records)
    row = _row(result.latency, framework="pytorch", variant="ptq", batch_size=1)
    files = [
        sweep.point_dir(f"pytorch-seed{s}") / "pytorch/artifacts/latency-ptq-b1.npy" for s in SEEDS
    ]
    p50s = np.array([np.percentile(np.load(f), 50) for f in files])
    half = t.ppf(0.975, 2) * p50s.std(ddof=1) / math.sqrt(3)
    assert row.runs == 3 and row.basis == "t over 3 runs' p50"
    assert row.p50_ms == pytest.approx(p50s.mean())
    assert (row.low_ms, row.high_ms) == pytest.approx((p50s.mean() - half, p50s.mean() + half))


def test_the_report_files_hold_the_same_figures(tmp_path: Path) -> None:
    sweep, records = _sweep(tmp_path)
    result = compute(sweep, records)
    paths = write_report(sweep, SweepSpec(seeds=SEEDS), SweepSettings(), records, result)
    stats = json.loads(paths.json.read_text())
    assert stats["differences"][0]["verdict"] == result.differences[0].verdict
    assert stats["summary"][0]["mean"] == pytest.approx(result.summary[0].mean)
    md = paths.md.read_text()
    assert "## Paired differences over seeds" in md and "distinguishable from zero" in md
    assert "| pytorch-seed9 | failed |" in md
    csv = paths.csv.read_text().splitlines()
    assert csv[0].startswith("framework,") and len(csv) > 1 + len(result.summary)
    assert "![accuracy-0](figures/accuracy-0.svg)" in md  # links what figures/ holds
    html = paths.html.read_text()
    assert html.count("<svg") == len(paths.figures) == 2  # accuracy and latency of the cell
    # One renderer for every report: the study report's tables, not a second HTML writer.
    assert "<th scope='col'>p (paired t)</th>" in html and "dataframe" not in html
    accuracy = (sweep.path / "figures" / "accuracy-0.svg").read_text()
    assert accuracy.count("<line") > 3 * 6  # a whisker with two caps on each of 6 bars


def test_a_tensorflow_point_serves_every_pytorch_only_cell(tmp_path: Path) -> None:
    """A grid over pytorch.quant_flow runs TensorFlow once per seed; its figures stand
    in both cells, so PyTorch - TensorFlow is paired by seed in each."""
    spec = SweepSpec(seeds=SEEDS, grid={"pytorch.quant_flow": ["pt2e", "fx"]})
    sweep = SweepDir.create(tmp_path, "s")
    records = {}
    for point in expand(spec):
        out = sweep.point_dir(point.name) / point.framework
        out.mkdir(parents=True)
        metrics = metrics_for(point.framework, point.name, out=out)
        metrics.seed = point.seed
        write_metrics(out / "metrics.json", metrics)
        records[point.name] = PointRecord(
            point.name, point.framework, point.seed, [list(kv) for kv in point.cell],
            status="ok", attempts=1,
        )  # fmt: skip
    assert len(records) == 2 * 3 + 3
    result = compute(sweep, records, spec)
    for cell in ("pytorch.quant_flow=pt2e", "pytorch.quant_flow=fx"):
        tf = _row(
            result.summary, framework="tensorflow", variant="ptq", cell=cell, metric="top1_pct"
        )
        assert tf.n == 3 and tf.seeds == SEEDS
        both = _row(result.differences, comparison="pytorch - tensorflow", within="ptq", cell=cell)
        assert both.n == 3
