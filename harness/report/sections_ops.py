"""What actually ran in int8: each int8 model's ops by family, framework beside framework.

Read from the converted artifact each framework made (VariantMetrics.ops, RungMetrics.ops;
harness_contract.metrics.census), so a family left in float (attention matmuls, softmax,
LayerNorm) shows where one tool chain stops quantizing and the other goes on.
"""

from __future__ import annotations

from harness.report.frame import ReportData
from harness.report.model import Column, Row, Section, Table
from harness_contract.metrics import MetricsFile
from harness_contract.metrics.census import FAMILIES, OpCensus, OpFamily
from harness_contract.runtimes import label

HOW = (
    "ops of each int8 model counted by family, as 'int8 / float': int8 when the quantizer "
    "made the op read int8 tensors (PyTorch: its inputs come from dequantize nodes of the "
    "q/dq graph; TFLite: its input tensor is int8), float otherwise; quantize/dequantize "
    "and shape ops are not counted. An op a kernel library fuses into an int8 kernel's "
    "epilogue (oneDNN's conv + ReLU) still counts as float in PyTorch's q/dq graph, while "
    "TFLite fuses it away. Each column names the model, its note what was read. '—': no op "
    "of that family. A count is a property of the converted file, not a timing: no device "
    "or thread count applies."
)


def _censuses(m: MetricsFile) -> list[tuple[str, OpCensus]]:
    """Every counted int8 model of one framework: each variant on its own runtime, then
    its rungs."""
    out: list[tuple[str, OpCensus]] = []
    for name, v in m.variants.items():
        if v.precision != "int8":
            continue
        if v.ops is not None:
            out.append((f"{m.framework} {name} · {label(m.framework, v.runtime)}", v.ops))
        for rung in v.rungs:
            if rung.ops is not None and rung.precision == "int8":
                out.append((f"{m.framework} {name} · {label(m.framework, rung.runtime)}", rung.ops))
    return out


def _cell(census: OpCensus, family: OpFamily) -> str:
    count = census.of(family)
    return "—" if count is None else f"{count.int8_ops} / {count.float_ops}"


def ops_table(data: ReportData) -> Table | None:
    models = [c for m in data.metrics for c in _censuses(m)]
    if not models:
        return None
    families = [f for f in FAMILIES if any(c.of(f) is not None for _, c in models)]
    columns = [Column("Op family", align="left")]
    columns += [Column(name, align="right") for name, _ in models]
    rows = [Row([family, *(_cell(c, family) for _, c in models)]) for family in families]
    notes = [f"{name}: {c.source}." for name, c in models]
    notes += [f"{name} counted as 'other': {', '.join(c.other)}." for name, c in models if c.other]
    return Table(columns, rows, HOW, notes=notes, wide=len(models) > 4)


def ops(data: ReportData) -> Section | None:
    table = ops_table(data)
    if table is None:
        return None
    return Section("What ran in int8 (op census)", [table], table.how_to_read)
