"""A short table of the headline figures, printed after a run (the report has the rest).

It reads the run as the report does, so a framework that left no metrics.json shows as
failed here too.
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.table import Table


def print_summary(run_dir: Path, console: Console | None = None) -> None:
    from .report import results_frame
    from .run_metrics import read_run

    results = read_run(run_dir)
    frame = results_frame(results.metrics, results.failed)
    table = Table(title=f"{run_dir.name}", title_justify="left")
    for col in ("framework", "variant", "status", "top-1 %", "size MiB", "b1 p50 ms", "device"):
        table.add_column(col)
    for _, row in frame.iterrows():
        table.add_row(
            row["framework"],
            row["variant"],
            row["status"],
            _fmt(row, "accuracy_pct", 1),
            _fmt(row, "size_mib", 2),
            _fmt(row, "latency_b1_p50_ms", 2),
            _text(row, "latency_device"),
        )
    (console or Console()).print(table)


def _text(row, column: str) -> str:
    value = row.get(column)
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _fmt(row, column: str, digits: int) -> str:
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"
