"""The report, built once from a run's data as a list of format-neutral sections."""

from __future__ import annotations

from harness.report import figures as fig
from harness.report.frame import ReportData
from harness.report.model import Report
from harness.report.sections_ladder import ladder
from harness.report.sections_latency import caveats, latency, latency_sweep
from harness.report.sections_layers import layers
from harness.report.sections_ops import ops
from harness.report.sections_profiles import breakdown, traces
from harness.report.sections_results import accuracy, calibration, memory, size, training
from harness.report.sections_run import intro, provenance, status, title
from harness.report.sections_support import support


def build_report(data: ReportData) -> Report:
    """Status first, then the paper's tables (I-III) and figures, latency, the runtime
    ladder, what ran in int8 (op census), where int8 loses accuracy layer by layer,
    memory, where the time goes, traces, what each framework supports (Table IV) and
    provenance."""
    latency_caveats = caveats(data)
    sections = [
        status(data, latency_caveats),
        accuracy(data, fig.accuracy_figure(data)),
        size(data, fig.size_figure(data)),
        training(data, fig.training_figure(data)),
        calibration(data),
        latency(data, fig.latency_figures(data), len(latency_caveats)),
        latency_sweep(data),
        ladder(data),
        ops(data),
        layers(data),
        memory(data),
        breakdown(data.passes, fig.breakdown_figure(data)),
        traces(data.passes),
        support(data),
        provenance(data),
    ]
    return Report(title(data), intro(data), [s for s in sections if s is not None])
