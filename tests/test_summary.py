"""The table printed at the end of a study: every row readable on its own, without
results.csv (a variant on eager, Inductor and ExecuTorch is three rows, told apart)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from harness.run.rundir import RunDir
from harness.run.summary import print_summary
from harness_contract.metrics import RungMetrics, write_metrics
from harness_contract.spec import build_spec
from tests.fake_runner import metrics_for


def _table(run: RunDir, width: int = 80) -> tuple[list[str], list[list[str]]]:
    """The printed table: its text lines above the rule, and each row's cells."""
    out = io.StringIO()
    print_summary(run.path, Console(file=out, width=width))
    lines = out.getvalue().splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("─"))
    return lines[:rule], [line.split() for line in lines[rule + 1 :] if line.strip()]


def test_each_row_of_the_closing_table_names_its_runtime_and_precision(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    run.spec_path.write_text(build_spec("smoke").to_json())
    metrics = metrics_for("pytorch", "r", out=run.framework("pytorch").path)  # with latency
    for variant in metrics.variants.values():
        variant.rungs = [
            RungMetrics(
                runtime=runtime,
                precision=variant.precision,
                status="skipped",
                reason="not asked for",
            )  # fmt: skip
            for runtime in ("inductor", "executorch")
        ]
    write_metrics(run.framework("pytorch").metrics, metrics)

    head, rows = _table(run)

    assert head[-1].split()[:5] == ["framework", "variant", "runtime", "precision", "status"]
    assert "latency on cpu" in head[0]  # one device for every row: said once, in the title
    assert all(len(row) == 8 and "…" not in " ".join(row) for row in rows)  # 80 columns
    keys = [tuple(row[:3]) for row in rows]
    assert len(keys) == 9 and len(set(keys)) == 9  # no two rows alike
    baseline = [row for row in rows if row[1] == "baseline"]
    assert {row[2] for row in baseline} == {"eager", "inductor", "executorch"}
    assert {row[3] for row in baseline} == {"fp32"}
    assert {row[3] for row in rows if row[1] == "ptq"} == {"int8"}
