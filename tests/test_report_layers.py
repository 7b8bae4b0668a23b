"""The per-layer section of the report: one SQNR figure for every framework and int8
variant, the per-layer table, the five worst layers, and the what-if table."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from harness.report.html import render_html
from harness.report.markdown import render_markdown
from harness.report.model import Report
from harness.report.sections_layers import layers
from harness_contract.layers.error import LayerAnalysis, LayerError, WhatIf
from harness_contract.metrics import VariantMetrics
from harness_contract.metrics.figures import AccuracyStats, SizeStats

NAMES = ["stem", "stages.0.0.conv1", "stages.0.0.conv2", "fc"]


def _analysis(offset: float, worst: str, status: str = "ok") -> LayerAnalysis:
    if status != "ok":
        return LayerAnalysis(status=status, reason="QuantizationDebugger: op rejected")
    rows = [
        LayerError(
            layer=n,
            kind="dense" if n == "fc" else "conv",
            sqnr_db=40.0 - 5 * i + offset,
            mse=0.01 * (i + 1),
            own_sqnr_db=5.0 if n == worst else 42.0,
            own_mse=0.001,
            tool_name=f"node_{i}",
        )
        for i, n in enumerate(NAMES)
    ]
    return LayerAnalysis(
        status="ok",
        method="fake method",
        own_method="fake own",
        images=256,
        layers=rows,
        ranked_by="own_sqnr_db",
        worst=[worst] + [n for n in NAMES if n != worst],
        what_if=[
            WhatIf(
                k=1,
                float_layers=[worst],
                status="ok",
                top1=0.8,
                agreement_with_fp32=0.97,
                size_bytes=3 * 2**20,
                latency_b1_p50_ms=1.5,
                device="cpu",
                threads=2,
                seconds=4.0,
            ),
            WhatIf(k=2, float_layers=[worst, "fc"], status="failed", reason="ValueError: boom"),
        ],
        seconds=12.0,
    )


def _variant(name: str, analysis: LayerAnalysis) -> Any:
    v = VariantMetrics(
        variant=name,  # type: ignore[arg-type]
        status="ok",
        precision="int8",
        accuracy=AccuracyStats(top1=0.7, n=500, device="cpu", agreement_with_fp32=0.9),
        size=SizeStats(bytes=2 * 2**20, format="x", file="x", parameters=10),
    )
    if "layers" in VariantMetrics.model_fields:  # once metrics.py carries the field
        return v.model_copy(update={"layers": analysis})
    return SimpleNamespace(
        layers=analysis, accuracy=v.accuracy, size=v.size, latency_at=v.latency_at
    )


def _data(tf_qat_status: str = "ok") -> Any:
    metrics = [
        SimpleNamespace(
            framework="pytorch",
            variants={
                "baseline": SimpleNamespace(),
                "ptq": _variant("ptq", _analysis(0, "stages.0.0.conv1")),
                "qat": _variant("qat", _analysis(3, "stages.0.0.conv1")),
            },
        ),
        SimpleNamespace(
            framework="tensorflow",
            variants={
                "ptq": _variant("ptq", _analysis(-2, "stages.0.0.conv1")),
                "qat": _variant("qat", _analysis(1, "fc", tf_qat_status)),
            },
        ),
    ]
    return SimpleNamespace(metrics=metrics)


def test_no_analysis_means_no_section() -> None:
    data = SimpleNamespace(metrics=[SimpleNamespace(framework="pytorch", variants={})])
    assert layers(data) is None  # type: ignore[arg-type]


def test_one_figure_holds_every_framework_and_int8_variant_in_network_order() -> None:
    section = layers(_data())  # type: ignore[arg-type]
    assert section is not None
    (figure,) = [b for b in section.blocks if getattr(b, "name", None) == "layers_sqnr"]
    assert figure.svg.count("<polyline") == 4
    for label in ("pytorch ptq", "pytorch qat", "tensorflow ptq", "tensorflow qat"):
        assert label in figure.svg
    positions = [figure.svg.index(f">{n}<") for n in NAMES]
    assert positions == sorted(positions)


def test_markdown_names_worst_layers_and_what_float_buys_back() -> None:
    section = layers(_data())  # type: ignore[arg-type]
    text = render_markdown(Report("t", [], [section]))
    assert "## Per-layer quantization error" in text
    assert "SQNR per layer" in text and "Worst layers" in text
    # worst first, each with the figure it was ranked by (here own SQNR)
    assert "`stages.0.0.conv1` (5.0 dB), `stem` (42.0 dB)" in text
    # k = 0 is the int8 variant itself (90% agreement); k = 1 buys back 7 points.
    assert "| pytorch | ptq | 0 | none (the int8 variant) | 70.00 | 90.00 | 0.00 | 2.00 |" in text
    assert "| 97.00 | 7.00 | 3.00 | 1.500 | 2 | 4.0 |" in text
    assert "failed: ValueError: boom" in text


def test_a_failed_analysis_is_said_and_the_others_still_drawn() -> None:
    section = layers(_data(tf_qat_status="failed"))  # type: ignore[arg-type]
    text = render_markdown(Report("t", [], [section]))
    assert "tensorflow qat: analysis failed: QuantizationDebugger: op rejected" in text
    (figure,) = [b for b in section.blocks if getattr(b, "name", None) == "layers_sqnr"]
    assert figure.svg.count("<polyline") == 3
    html = render_html(Report("t", [], [section]))
    assert "Per-layer quantization error" in html and "<svg" in html


def test_own_sqnr_of_an_output_left_in_float_is_said_to_be_weight_rounding_alone() -> None:
    """PT2E leaves conv2 (fused into the residual add) and fc in float; TFLite rounds
    them: the report names those layers next to the table, per variant."""
    data = _data()
    for variant in data.metrics[0].variants.values():
        analysis = getattr(variant, "layers", None)
        for row in analysis.layers if analysis else []:
            row.output_quantized = row.layer not in ("stages.0.0.conv2", "fc")
    for variant in data.metrics[1].variants.values():
        for row in variant.layers.layers if variant.layers.status == "ok" else []:
            row.output_quantized = True
    text = render_markdown(Report("t", [], [layers(data)]))  # type: ignore[list-item]
    assert "weight rounding alone" in text
    assert "pytorch ptq: `stages.0.0.conv2`, `fc`; pytorch qat: `stages.0.0.conv2`, `fc`." in text
    assert "tensorflow ptq:" not in text
    # unknown (older metrics): nothing said
    plain = render_markdown(Report("t", [], [layers(_data())]))  # type: ignore[list-item]
    assert "weight rounding alone" not in plain


# ---------------------------------------------------------------- issue 17


def _split(data: Any) -> Any:
    """Issue-17 figures on the fixture: weight/output split, PT2E's unrounded conv2 and
    fc, one block output per framework, the weight ranking and a k = 0 row timed again."""
    for m in data.metrics:
        for variant in m.variants.values():
            analysis = getattr(variant, "layers", None)
            if analysis is None or analysis.status != "ok":
                continue
            for row in analysis.layers:
                row.weight_sqnr_db, row.weight_mse = 50.0, 1e-5
                rounded = m.framework == "tensorflow" or row.layer not in ("stages.0.0.conv2", "fc")
                row.output_quantized = rounded
                row.output_sqnr_db = 33.0 if rounded else None
            offset = 2.0 if m.framework == "tensorflow" else 0.0
            analysis.layers.insert(
                3,
                LayerError(
                    layer="stages.0.0.out",
                    kind="block",
                    sqnr_db=30.0 + offset,
                    mse=0.01,
                    output_quantized=True,
                ),
            )
            analysis.ranked_by = "weight_sqnr_db"
            analysis.ranking = list(analysis.worst)
            analysis.what_if.insert(
                0,
                WhatIf(
                    k=0,
                    float_layers=[],
                    status="ok",
                    top1=0.71,
                    agreement_with_fp32=0.91,
                    size_bytes=2 * 2**20,
                    latency_b1_p50_ms=1.25,
                    device="cpu",
                    threads=2,
                ),
            )
    return data


def _text(data: Any) -> str:
    return render_markdown(Report("t", [], [layers(data)]))  # type: ignore[list-item]


def test_layer_table_has_weight_and_output_columns_and_marks_unrounded_points() -> None:
    text = _text(_split(_data()))
    assert "pytorch ptq weight (dB)" in text and "pytorch ptq output (dB)" in text
    conv2 = next(line for line in text.splitlines() if line.startswith("| stages.0.0.conv2 |"))
    cells = [c.strip() for c in conv2.strip("|").split("|")]
    # pytorch ptq: propagated, own, weight, output; PT2E leaves conv2's output in float
    assert cells[1].endswith("†") and cells[2].endswith("†") and cells[4] == "— †"
    assert cells[3] == "50.0"  # weight rounding is weight rounding, rounded output or not
    # tensorflow rounds it: no mark in its columns
    tf_cells = cells[9:13]
    assert not any("†" in c for c in tf_cells), tf_cells
    assert "† the int8 model leaves this output in float" in text


def test_figure_draws_unrounded_points_hollow() -> None:
    section = layers(_split(_data()))
    assert section is not None
    (figure,) = [b for b in section.blocks if getattr(b, "name", None) == "layers_sqnr"]
    # two pytorch variants x (conv2, fc) unrounded
    assert figure.svg.count('fill="white"') == 4
    assert "hollow: output left in float" in figure.svg


def test_block_outputs_are_compared_side_by_side_across_frameworks() -> None:
    text = _text(_split(_data()))
    side_by_side = text[text.index("Block outputs, side by side") :]
    row = next(x for x in side_by_side.splitlines() if x.startswith("| stages.0.0.out |"))
    # ptq: pytorch 30.0, tensorflow 32.0 (difference 2.0); then qat
    assert "| 30.0 | 32.0 | 2.0 |" in row


def test_ranking_and_k0_timed_in_the_what_if_window_are_said() -> None:
    text = _text(_split(_data()))
    assert "weight SQNR" in text  # ranked by
    assert (
        "| pytorch | ptq | 0 | none (the int8 variant, timed again here) | 71.00 | 91.00 |" in text
    )
    assert "| 1.250 |" in text
    # agreement bought back is counted from the k = 0 row measured in the same window
    assert "| 97.00 | 6.00 | 3.00 | 1.500 | 2 | 4.0 |" in text


def test_qat_reference_and_drift_are_said() -> None:
    data = _split(_data())
    qat = data.metrics[0].variants["qat"].layers
    qat.reference = "qat_float"
    for row in qat.layers:
        row.drift_sqnr_db = 28.0
    text = _text(data)
    assert "pytorch qat drift (dB)" in text
    assert "measured against its own fine-tuned float model" in text


def test_the_analysis_notes_are_said() -> None:
    data = _data()
    qat = data.metrics[0].variants["qat"].layers
    qat.notes = ["sensitivity not measured: this variant gets no what-if"]
    assert "pytorch qat: sensitivity not measured: this variant gets no what-if" in _text(data)
