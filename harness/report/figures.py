"""The report's figures, from its data: Fig. 3 (accuracy), Table I and II as charts,
Fig. 4 (latency at batch 1 and the largest batch) and where the time goes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.report import svg
from harness.report.charts import (
    NA,
    BarChart,
    StackedBar,
    StackedBars,
    present,
    render_bar_chart,
    render_stacked_bars,
)
from harness.report.frame import ReportData
from harness.report.latency import end_batch_sizes, own_rows
from harness.report.model import Figure
from harness.report.sections_profiles import breakdown_rows, row_label
from harness.results.profile_passes import ProfilePass
from harness_contract.frameworks import short_name
from harness_contract.fs.atomic import write_text_atomic
from harness_contract.metrics import VARIANTS
from harness_contract.runtimes import ladder_order
from harness_contract.study.breakdown import CATEGORIES

VARIANT_LABELS = {"baseline": "Baseline (fp32)", "ptq": "PTQ (int8)", "qat": "QAT (int8)"}
# One colour per category, CATEGORIES order: Okabe-Ito first, greys for the catch-alls.
CATEGORY_COLORS = {
    "convolution": "#0072B2",
    "matmul": "#56B4E9",
    "quantize": "#D55E00",
    "elementwise": "#E69F00",
    "normalization": "#CC79A7",
    "pooling": "#009E73",
    "data": "#F0E442",
    "memory": "#8C8C8C",
    "other": "#C8C8C8",
}
DARK_TEXT = frozenset({"matmul", "elementwise", "data", "other"})  # light fills, black labels


def _frameworks(frame: pd.DataFrame) -> list[str]:
    return [str(f) for f in dict.fromkeys(frame["framework"])]


def _variants(frame: pd.DataFrame) -> list[str]:
    """Variants present in the frame, in the contract's order (baseline, ptq, qat)."""
    present_here = set(frame["variant"])
    return [v for v in VARIANTS if v in present_here]


def _cell(frame: pd.DataFrame, framework: str, variant: str, column: str) -> float | None:
    if column not in frame.columns:
        return None
    match = frame[(frame["framework"] == framework) & (frame["variant"] == variant)]
    if match.empty:
        return None
    value = match.iloc[0][column]
    return float(value) if present(value) else None


def _by_variant(frame: pd.DataFrame, value: Any) -> dict[tuple[str, str], float | None]:
    """(framework, variant label) -> value(framework, variant) for every bar."""
    return {
        (fw, VARIANT_LABELS.get(v, v)): value(fw, v)
        for fw in _frameworks(frame)
        for v in _variants(frame)
    }


def _column_values(frame: pd.DataFrame, column: str) -> dict[tuple[str, str], float | None]:
    return _by_variant(frame, lambda fw, v: _cell(frame, fw, v, column))


def _variant_series(frame: pd.DataFrame) -> list[str]:
    return [VARIANT_LABELS.get(v, v) for v in _variants(frame)]


def accuracy_svg(frame: pd.DataFrame) -> str:
    """Fig. 3: top-1 accuracy per framework x variant, on a fixed 0-100 % axis."""
    return render_bar_chart(
        BarChart(
            title="Top-1 accuracy by framework and variant (Fig. 3)",
            subtitle="test images; higher is better",
            y_label="Top-1 accuracy (%)",
            groups=_frameworks(frame),
            series=_variant_series(frame),
            values=_column_values(frame, "accuracy_pct"),
            value_format=svg.fmt_fixed(1),
            y_max=100.0,
        )
    )


def _joined(frame: pd.DataFrame, column: str) -> str:
    if column not in frame:
        return NA
    values = [str(v) for v in dict.fromkeys(frame[column]) if present_text(v)]
    return ", ".join(values) if values else NA


def present_text(value: Any) -> bool:
    return value is not None and value is not pd.NA and str(value) not in ("", "nan")


def _runtime_groups(latency: pd.DataFrame) -> list[tuple[str, str]]:
    """(framework, runtime) in ladder order: each framework's runtimes as measured."""
    order = ladder_order()
    pairs = list(dict.fromkeys(zip(latency["framework"], latency["runtime"], strict=True)))
    frameworks = list(dict.fromkeys(f for f, _ in pairs))
    return sorted(pairs, key=lambda p: (frameworks.index(p[0]), order.get(p, 99)))


def latency_svg(frame: pd.DataFrame, latency: pd.DataFrame, batch_size: int) -> str:
    """Fig. 4: per-sample p50 latency at one batch size, at each row's own threads, one
    group of bars per framework and runtime (so bars side by side share a runtime), with
    device and threads in the title."""
    own = own_rows(latency)
    own = own[own["batch_size"] == batch_size]
    per_sample = own.set_index(["framework", "runtime", "variant"])["per_sample_p50_ms"]
    groups = _runtime_groups(own)
    names = {g: f"{short_name(g[0])} {g[1]}" for g in groups}  # fits under 5 groups
    values = {
        (names[g], VARIANT_LABELS.get(v, v)): per_sample.get((*g, v))
        for g in groups
        for v in _variants(frame)
    }
    devices = ", ".join(dict.fromkeys(str(d) for d in own["device"])) or NA
    threads = ", ".join(dict.fromkeys(str(t) for t in own["threads"])) or NA
    return render_bar_chart(
        BarChart(
            title=f"Per-sample p50 latency, batch {batch_size} — device {devices} (Fig. 4)",
            subtitle=f"threads: {threads}; p50 per call / batch; PT = PyTorch, TF = TensorFlow; "
            "lower is better",
            y_label="Latency per sample (ms)",
            groups=[names[g] for g in groups],
            series=_variant_series(frame),
            values=values,
            value_format=svg.fmt_auto,
        )
    )


def size_svg(frame: pd.DataFrame) -> str:
    """Table I as a chart: serialized model size per framework x variant, in MiB."""
    return render_bar_chart(
        BarChart(
            title="Serialized model size (Table I)",
            subtitle="MiB = bytes / 2^20; formats differ between frameworks",
            y_label="Model size (MiB)",
            groups=_frameworks(frame),
            series=_variant_series(frame),
            values=_column_values(frame, "size_mib"),
            value_format=svg.fmt_fixed(2),
        )
    )


def _seconds_per_epoch(frame: pd.DataFrame, framework: str, variant: str) -> float | None:
    wall = _cell(frame, framework, variant, "train_s")
    epochs = _cell(frame, framework, variant, "train_epochs")
    return wall / epochs if wall is not None and epochs else None


def training_svg(frame: pd.DataFrame) -> str:
    """Table II as a chart: baseline training vs QAT fine-tuning, seconds per epoch."""
    series = {"baseline": "Baseline training", "qat": "QAT fine-tuning"}
    values = {
        (fw, label): _seconds_per_epoch(frame, fw, variant)
        for fw in _frameworks(frame)
        for variant, label in series.items()
    }
    return render_bar_chart(
        BarChart(
            title="Training time per epoch (Table II)",
            subtitle="wall-clock seconds per epoch; QAT runs fewer epochs than the baseline",
            y_label="Training time (s/epoch)",
            groups=_frameworks(frame),
            series=list(series.values()),
            values=values,
            value_format=svg.fmt_fixed(1),
            colors=(svg.PALETTE[0], svg.PALETTE[2]),  # baseline and QAT keep Fig. 3's colours
        )
    )


def breakdown_svg(passes: Sequence[ProfilePass]) -> str:
    """Where the time goes: one stacked bar per pass and device, segments in CATEGORIES
    order, each the category's share of that device's profiled op self time."""
    bars = [
        StackedBar(row_label(p, d), dict(d.shares) if d else None, p.breakdown_status)
        for p, d in breakdown_rows(passes)
    ]
    return render_stacked_bars(
        StackedBars(
            title="Where the time goes: share of profiled op self time",
            subtitle="per pass and device, self time over the profiled steps with the profiler "
            "on; not comparable to latency",
            bars=bars,
            categories=CATEGORIES,
            colors=CATEGORY_COLORS,
            dark_text=DARK_TEXT,
        )
    )


def accuracy_figure(data: ReportData) -> Figure:
    return Figure("accuracy", accuracy_svg(data.frame))


def size_figure(data: ReportData) -> Figure:
    return Figure("size", size_svg(data.frame))


def training_figure(data: ReportData) -> Figure:
    return Figure("training", training_svg(data.frame))


def latency_figures(data: ReportData) -> list[Figure]:
    return [
        Figure(f"latency_b{b}", latency_svg(data.frame, data.latency, b))
        for b in end_batch_sizes(data.latency)
    ]


def breakdown_figure(data: ReportData) -> Figure | None:
    """Only when the run recorded profiler passes."""
    if not breakdown_rows(data.passes):
        return None
    svg_text = breakdown_svg(data.passes)
    return Figure("breakdown", svg_text, wide=True)


def write_figures(figures: Sequence[Figure], directory: Path) -> list[Path]:
    """Write each figure to ``<directory>/<name>.svg`` atomically; returns the paths."""
    paths = []
    for fig in figures:
        path = Path(directory) / f"{fig.name}.svg"
        write_text_atomic(path, fig.svg)
        paths.append(path)
    return paths
