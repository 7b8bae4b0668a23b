"""A short table of the headline figures, printed after a run (the report has the rest).

It reads the run as the report does, so a framework that left no metrics.json shows as
failed here too.
"""

from __future__ import annotations

import math
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table


def print_summary(run_dir: Path, console: Console | None = None) -> None:
    from harness.report import results_frame
    from harness.results.run_metrics import read_run

    results = read_run(run_dir)
    frame = results_frame(results.metrics, results.failed)
    # A variant is one row per runtime (eager, Inductor, ExecuTorch...): the runtime and
    # precision columns tell them apart without results.csv. Thin lines, and the latency
    # device in the title when every row shares it, keep each cell whole in 80 columns
    # (a pipe or a CI log is 80 wide).
    devices = sorted({d for d in frame.get("latency_device", []) if isinstance(d, str)})
    one_device = len(devices) <= 1
    title = run_dir.name + (f" · latency on {devices[0]}" if len(devices) == 1 else "")
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        show_edge=False,
    )
    for col in ("framework", "variant", "runtime", "precision", "status"):
        table.add_column(col, no_wrap=True)
    for col in ("top-1\n%", "size\nMiB", "b1 p50\nms"):
        table.add_column(col, justify="right", no_wrap=True)
    if not one_device:
        table.add_column("latency\ndevice", no_wrap=True)
    for _, row in frame.iterrows():
        cells = [
            row["framework"],
            row["variant"],
            _text(row, "runtime"),
            _text(row, "precision"),
            row["status"],
            _fmt(row, "accuracy_pct", 1),
            _fmt(row, "size_mib", 2),
            _fmt(row, "latency_b1_p50_ms", 2),
        ]
        table.add_row(*cells, *([] if one_device else [_text(row, "latency_device")]))
    (console or Console()).print(table)


def _text(row, column: str) -> str:
    value = row.get(column)
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _fmt(row, column: str, digits: int) -> str:
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"
