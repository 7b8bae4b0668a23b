"""report.html and its SVG figures: parseable, self-contained, complete, and n/a-safe."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from harness.report import ReportData, build_report, results_frame
from harness.report.figures import (
    CATEGORY_COLORS,
    accuracy_svg,
    breakdown_svg,
    latency_svg,
    size_svg,
    training_svg,
    write_figures,
)
from harness.report.html import render_html
from harness.report.svg import SVG_NS
from harness.results.traces import PERFETTO_URL
from harness_contract.metrics import MetricsFile, VariantMetrics
from tests.test_report import _baseline, _ptq, _qat, _unavailable, make_metrics

CHROMIUM = Path("/usr/bin/chromium")
SVG_BLOCK = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
FIGURE_TITLES = (
    "Top-1 accuracy by framework and variant (Fig. 3)",
    "Serialized model size (Table I)",
    "Training time per epoch (Table II)",
    "Per-sample p50 latency, batch 1",
    "Per-sample p50 latency, batch 5",
    "Where the time goes: share of profiled op self time",
)
# accuracy, size, training, calibration, latency, latency sweep, memory, breakdown, top ops,
# traces
TABLES = 10
BREAKDOWN_PLOT_W = 860 - 300 - 24  # figures.BD_WIDTH - BD_LABEL_W - BD_RIGHT
TFLITE_REASON = "TFLite int8 has no per-op profiler in Python"


def _failed_ptq() -> VariantMetrics:
    return VariantMetrics(
        variant="ptq",
        status="failed",
        precision="int8",
        reason="converter raised <RuntimeError> & gave up",
    )


def _two_frameworks() -> list[MetricsFile]:
    qat = _qat()
    qat = qat.model_copy(
        update={"profiles": [qat.profiles[0], _unavailable("inference", TFLITE_REASON)]}
    )
    return [
        make_metrics("pytorch"),
        make_metrics("tensorflow", variants=[_baseline(), _failed_ptq(), qat]),
    ]


def _data(metrics: list[MetricsFile], problems: tuple[str, ...] = ()) -> ReportData:
    return ReportData.from_metrics(metrics, problems)


def _page(metrics: list[MetricsFile], problems: tuple[str, ...] = ()) -> str:
    return render_html(build_report(_data(metrics, problems)))


def _figures(metrics: list[MetricsFile]) -> dict[str, str]:
    return {f.name: f.svg for f in build_report(_data(metrics)).figures()}


class _Collector(HTMLParser):
    """Counts start tags and checks every non-void tag is closed in order."""

    VOID = {"meta", "br", "img", "hr", "link", "input", "rect", "line"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1  # self-closing SVG shapes push nothing

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Collector:
    parser = _Collector()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], f"unclosed tags: {parser.stack}"
    return parser


# ---------------------------------------------------------------- the page


def test_page_is_well_formed_and_has_every_section() -> None:
    parsed = _parse(_page(_two_frameworks()))

    assert parsed.tags["html"] == 1
    assert parsed.tags["svg"] == len(FIGURE_TITLES)
    assert parsed.tags["table"] == TABLES
    text = " ".join(parsed.text)
    for heading in (
        "Status",
        "Accuracy (Fig. 3)",
        "Model size (Table I)",
        "Latency by batch size and threads",
        "Where the time goes",
        "Traces",
        "Provenance",
    ):
        assert heading in text


def test_every_inline_svg_parses_as_xml() -> None:
    blocks = SVG_BLOCK.findall(_page(_two_frameworks()))

    assert len(blocks) == len(FIGURE_TITLES)
    for block in blocks:
        root = ET.fromstring(block)
        assert root.tag == f"{{{SVG_NS}}}svg"


def test_page_references_nothing_outside_itself() -> None:
    page = _page(_two_frameworks())

    urls = re.findall(r"https?://[^\s\"'<>)]*", page)
    # Perfetto's address is text telling the reader where to open a trace, never a link.
    assert set(urls) <= {SVG_NS, PERFETTO_URL}
    assert not re.search(r"(href|src)=[\"']?https?:", page)
    assert "<script" not in page.lower()
    assert "@import" not in page and "url(" not in page


def test_page_names_every_framework_variant_and_figure() -> None:
    text = " ".join(_parse(_page(_two_frameworks())).text)

    for name in ("pytorch", "tensorflow", "baseline", "ptq", "qat"):
        assert name in text
    for title in FIGURE_TITLES:
        assert title in text


def test_failed_variant_shows_its_reason_escaped_and_na_in_the_figures() -> None:
    page = _page(_two_frameworks())

    # The reason's markup characters are escaped, then read back intact.
    assert "converter raised &lt;RuntimeError&gt; &amp; gave up" in page
    assert "<RuntimeError>" not in page
    assert "<tr class='failed'>" in page
    status = page.split("<h2>Status</h2>")[1].split("</section>")[0]
    assert "tensorflow / ptq" in status and "failed" in status
    # The failed PTQ has no accuracy: the chart draws no bar, just an n/a label.
    accuracy = SVG_BLOCK.findall(page)[0]
    assert ">n/a</text>" in accuracy


def test_warnings_and_provenance_are_shown() -> None:
    metrics = [
        make_metrics("pytorch", dataset_kind="synthetic"),
        make_metrics("tensorflow", spec_digest="0000000000000000"),
    ]
    page = _page(metrics, problems=("jax: metrics.json is not JSON",))

    assert "synthetic data (pytorch)" in page
    assert "Not comparable:" in page and "spec digest" in page
    assert "jax: metrics.json is not JSON" in page
    for fact in ("torch 2.13.0", "Initial weights", "abcdef0123456789", "local (/work/main"):
        assert fact in page


def test_single_framework_and_variant_subset_render() -> None:
    metrics = [make_metrics("pytorch", variants=[_baseline(), _ptq()], status="failed")]
    page = _page(metrics)

    _parse(page)
    for block in SVG_BLOCK.findall(page):
        ET.fromstring(block)
    assert "not in metrics.json" in page  # the missing QAT row is surfaced


# ---------------------------------------------------------------- the figures


def test_breakdown_section_draws_the_figure_the_tables_and_the_unavailable_reason() -> None:
    page = _page(_two_frameworks())
    section = page.split("<h2>Where the time goes</h2>")[1].split("</section>")[0]
    traces = page.split("<h2>Traces</h2>")[1].split("</section>")[0]

    assert "Where the time goes: share of profiled op self time" in section
    assert "<td class='num'>34.0</td>" in section  # PyTorch PTQ inference quantize share
    assert "<tr class='skipped'><td>inference</td><td>qat</td><td>tensorflow</td>" in section
    assert TFLITE_REASON in traces


def test_breakdown_bars_are_stacked_shares_in_category_colours() -> None:
    rows = _data(_two_frameworks()).passes
    svg = breakdown_svg(rows)
    root = ET.fromstring(svg)

    labels = [t.text for t in root.iter(f"{{{SVG_NS}}}text")]
    assert labels.index("pytorch ptq inference (cpu)") < labels.index("pytorch qat inference (cpu)")
    assert "tensorflow qat inference (cpu)" in labels and "unavailable" in labels
    quantize = [
        r for r in root.iter(f"{{{SVG_NS}}}rect") if r.get("fill") == CATEGORY_COLORS["quantize"]
    ]
    widths = sorted(float(r.get("width")) for r in quantize if r.get("width") != "12")
    # PyTorch PTQ inference 34 %, QAT inference 31 %, QAT train 30 % (twice: both frameworks).
    assert widths == pytest.approx(
        [BREAKDOWN_PLOT_W * f for f in (0.30, 0.30, 0.31, 0.34)], abs=0.1
    )
    assert breakdown_svg(rows) == svg  # deterministic


def test_figures_include_the_breakdown_only_when_passes_exist(tmp_path: Path) -> None:
    metrics = _two_frameworks()
    unprofiled = [
        m.model_copy(
            update={
                "variants": {
                    name: v.model_copy(update={"profiles": []}) for name, v in m.variants.items()
                }
            }
        )
        for m in metrics
    ]

    assert list(_figures(metrics))[-1] == "breakdown"
    assert "breakdown" not in _figures(unprofiled)
    paths = write_figures(build_report(_data(metrics)).figures(), tmp_path / "figures")
    assert paths[-1] == tmp_path / "figures" / "breakdown.svg"
    ET.parse(paths[-1])


def test_figures_are_deterministic_xml_with_titles() -> None:
    first, second = _figures(_two_frameworks()), _figures(_two_frameworks())
    assert first == second
    assert list(first) == [
        "accuracy",
        "size",
        "training",
        "latency_b1",
        "latency_b5",
        "breakdown",
    ]
    for svg in first.values():
        root = ET.fromstring(svg)
        assert root.find(f"{{{SVG_NS}}}title") is not None


def test_latency_figure_names_the_device_and_uses_per_sample_values() -> None:
    data = _data([make_metrics()])
    svg = latency_svg(data.frame, data.latency, 5)

    assert "device cpu" in svg
    # Baseline at batch 5: p50 100 ms / 5 images = 20 ms per sample.
    assert ">20.0</text>" in svg


def test_all_missing_values_draw_no_bars() -> None:
    empty = VariantMetrics(variant="baseline", status="skipped", precision="fp32", reason="x")
    frame = results_frame([make_metrics(variants=[empty])])

    for svg in (accuracy_svg(frame), size_svg(frame), training_svg(frame)):
        root = ET.fromstring(svg)
        bars = [r for r in root.iter(f"{{{SVG_NS}}}rect") if r.get("height") not in (None, "12")]
        assert len(bars) == 1  # only the white background
        assert "n/a" in svg and "no data" in svg


def test_text_is_xml_escaped_in_svgs() -> None:
    frame = results_frame([make_metrics("a<b>&c")])

    svg = accuracy_svg(frame)
    ET.fromstring(svg)
    assert "a&lt;b&gt;&amp;c" in svg


def test_write_figures_writes_svg_files(tmp_path: Path) -> None:
    figures = build_report(_data(_two_frameworks())).figures()

    paths = write_figures(figures, tmp_path / "figures")

    assert [p.name for p in paths] == [
        "accuracy.svg",
        "size.svg",
        "training.svg",
        "latency_b1.svg",
        "latency_b5.svg",
        "breakdown.svg",
    ]
    for path in paths:
        assert path.parent == tmp_path / "figures"
        ET.parse(path)


def test_empty_frame_columns_are_tolerated() -> None:
    frame = pd.DataFrame({"framework": ["pytorch"], "variant": ["baseline"]})

    ET.fromstring(accuracy_svg(frame))
    ET.fromstring(training_svg(frame))


# ---------------------------------------------------------------- in a real browser


def _chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run(
        [str(CHROMIUM), *flags, *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium absent: install Debian's chromium package"
)
def test_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(_page(_two_frameworks()), encoding="utf-8")

    dom = _chromium(page, tmp_path, "--dump-dom").stdout
    shot = tmp_path / "page.png"
    _chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,4000")

    assert dom.count("<svg") == len(FIGURE_TITLES)
    assert dom.count("<table") == TABLES
    assert "Per-sample p50 latency, batch 1" in dom
    assert "Where the time goes: share of profiled op self time" in dom
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # a blank 1280x4000 page compresses to a few KiB
