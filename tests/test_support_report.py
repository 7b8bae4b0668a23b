"""support.md and the report's support section for a two-framework run: every question a
row, each framework's answer side by side (yes, no with its error, not probed with why,
timed out at the bound, — without data), the paper's claims, the versions."""

from __future__ import annotations

import dataclasses
import os

import pytest

from harness.report import render_html, render_markdown
from harness.report.frame import ReportData
from harness.report.model import Note, Report, Table
from harness.report.sections_support import support
from harness.report.support_md import render_support_md, write_support_md
from harness_contract.metrics import MetricsFile, ProbeResult, SupportMatrix
from harness_contract.study.support import PROBES
from tests.fake_runner import metrics_for

SUPPORT_MD = "support.md"  # the file name users know: RunDir.support_md keeps it
RUN = "20261129-smoke"
GPU_WHY = "no CUDA device here (torch 2.13.0+cpu, a CPU-only build)"
EXPORT_ERROR = "NotImplementedError: Cannot access storage of OpaqueTensorImpl | packed"
FUSION_ERROR = "ValueError: no fused conv+relu in the .tflite"


def _matrix(versions: dict[str, str], answers: dict[str, tuple[str, str | None]]) -> SupportMatrix:
    probes = [
        ProbeResult(
            probe=p.slug,
            area=p.area,
            question=p.question,
            outcome=answers.get(p.slug, ("yes", f"{p.slug} worked"))[0],  # type: ignore[arg-type]
            detail=answers.get(p.slug, ("yes", f"{p.slug} worked"))[1],
            seconds=0.5,
        )
        for p in PROBES
    ]
    return SupportMatrix(versions=versions, timeout_s=60.0, probes=probes)


def _pytorch() -> MetricsFile:
    m = metrics_for("pytorch", RUN)
    m.support = _matrix(
        {"torch": "2.13.0", "torchao": "0.18.0"},
        {
            "int8_gpu": ("not probed", GPU_WHY),
            "int8_export": ("no", EXPORT_ERROR),
            "custom_layer": ("timed out", "stopped after 60 s (support.timeout_s)"),
        },
    )
    return m


def _tensorflow() -> MetricsFile:
    m = metrics_for("tensorflow", RUN)
    m.support = _matrix(
        {"tensorflow": "2.21.0", "tf_keras": "2.21.0"},
        {"auto_fusion": ("no", FUSION_ERROR), "int8_gpu": ("not probed", "no GPU here")},
    )
    return m


def _switched_off(framework: str) -> MetricsFile:
    return metrics_for(framework, RUN)  # a complete study without support data


def _table_rows(md: str) -> dict[str, list[str]]:
    """The markdown table's rows by question, cells split on unescaped '|'."""
    found = {}
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith(("| Area", "| ---")):
            cells = [c.strip() for c in line.replace("\\|", "\0").strip("|").split("|")]
            found[cells[1]] = [c.replace("\0", "|") for c in cells]
    return found


QUESTION = {p.slug: p.question for p in PROBES}


def test_support_md_has_every_question_with_both_frameworks_side_by_side():
    md = render_support_md([_tensorflow(), _pytorch()])
    header = next(line for line in md.splitlines() if line.startswith("| Area"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "Area",
        "Question",
        "pytorch",
        "tensorflow",
        "Paper: PyTorch",
        "Paper: TensorFlow",
    ]
    table = _table_rows(md)
    assert set(table) == set(QUESTION.values())
    assert table[QUESTION["int8_cpu"]][:4] == ["hardware", QUESTION["int8_cpu"], "yes", "yes"]


def test_support_md_cells_say_no_with_the_error_not_probed_with_why_and_timed_out():
    table = _table_rows(render_support_md([_pytorch(), _tensorflow()]))
    assert table[QUESTION["int8_gpu"]][2:4] == [f"not probed: {GPU_WHY}", "not probed: no GPU here"]
    assert table[QUESTION["int8_export"]][2] == f"no: {EXPORT_ERROR}"  # its '|' escaped
    assert table[QUESTION["auto_fusion"]][3] == f"no: {FUSION_ERROR}"
    assert table[QUESTION["custom_layer"]][2] == "timed out after 60 s"


def test_support_md_quotes_the_papers_table_iv_beside_each_question():
    table = _table_rows(render_support_md([_pytorch(), _tensorflow()]))
    assert table[QUESTION["auto_fusion"]][4:] == ["manual layer fusion expected", "no issue listed"]
    assert table[QUESTION["embedding"]][4:] == ["embedding type layers not supported"] * 2
    assert "TF Lite models are byte type" in table[QUESTION["per_layer_access"]][5]
    assert "no quantization support on GPU" in table[QUESTION["int8_gpu"]][4]


def test_support_md_names_the_versions_and_what_each_probe_saw():
    md = render_support_md([_pytorch(), _tensorflow()])
    assert "- **pytorch**: torch 2.13.0, torchao 0.18.0 (17 probes in 8.5 s)" in md
    assert "- **tensorflow**: tensorflow 2.21.0, tf_keras 2.21.0 (17 probes in 8.5 s)" in md
    assert "- `int8_cpu` (yes, 0.5 s): int8_cpu worked" in md
    assert f"- `int8_export` (no, 0.5 s): {EXPORT_ERROR}" in md
    assert "per probe (60 s)" in md


def test_a_framework_without_support_data_is_a_column_of_dashes_that_says_why():
    md = render_support_md([_pytorch(), _switched_off("tensorflow")])
    table = _table_rows(md)
    assert {row[3] for row in table.values()} == {"—"}
    assert "- **tensorflow**: no support data: the probes were switched off" in md


def test_a_study_that_failed_before_the_probes_says_so():
    failed = metrics_for("tensorflow", RUN, status="failed")
    md = render_support_md([_pytorch(), failed])
    assert "tensorflow**: no support data: the study ended failed before the probes ran" in md


def test_write_support_md_writes_the_run_file_with_a_column_for_a_framework_that_left_nothing(
    tmp_path,
):
    (tmp_path / "tensorflow").mkdir()  # its runner made the folder, then died
    path = write_support_md(tmp_path, [_pytorch()])
    assert path == tmp_path / SUPPORT_MD
    md = path.read_text()
    assert "- **tensorflow**: no support data: it left no readable metrics.json" in md
    assert {row[3] for row in _table_rows(md).values()} == {"—"}
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == [SUPPORT_MD]  # no temp left


def test_write_support_md_writes_nothing_when_no_framework_was_probed(tmp_path):
    assert (
        write_support_md(tmp_path, [_switched_off("pytorch"), _switched_off("tensorflow")]) is None
    )
    assert not (tmp_path / SUPPORT_MD).exists()


def test_write_support_md_replaces_an_older_file(tmp_path):
    (tmp_path / SUPPORT_MD).write_text("stale")
    write_support_md(tmp_path, [_pytorch(), _tensorflow()])
    assert (tmp_path / SUPPORT_MD).read_text().startswith(f"# Support matrix — run `{RUN}`")


# ------------------------------------------------------------------ the report section


def _data(*metrics: MetricsFile) -> ReportData:
    return ReportData.from_metrics(list(metrics))


def test_the_section_is_a_typed_table_of_every_question_and_both_frameworks():
    section = support(_data(_tensorflow(), _pytorch()))
    assert section is not None
    (table,) = section.blocks
    assert isinstance(table, Table)
    assert table.headers == [
        "Area",
        "Question",
        "pytorch",
        "tensorflow",
        "Paper: PyTorch",
        "Paper: TensorFlow",
    ]
    cells = {row[1]: row for row in table.cells()}
    assert len(cells) == len(PROBES)
    assert cells[QUESTION["int8_gpu"]][2] == f"not probed: {GPU_WHY}"
    assert cells[QUESTION["custom_layer"]][2] == "timed out after 60 s"
    assert cells[QUESTION["auto_fusion"]][3:] == [
        f"no: {FUSION_ERROR}",
        "manual layer fusion expected",
        "no issue listed",
    ]
    assert "Versions, pytorch: torch 2.13.0, torchao 0.18.0." in table.notes
    assert section.how_to_read and "60 s" in section.how_to_read


def test_the_section_renders_in_markdown_and_html():
    section = support(_data(_pytorch(), _tensorflow()))
    assert section is not None
    report = Report("t", [], [section])
    md = render_markdown(report)
    assert "## Support matrix (the paper's Table IV, probed)" in md
    assert f"no: {EXPORT_ERROR.replace('|', chr(92) + '|')}" in md
    html = render_html(report)
    assert "timed out after 60 s" in html and "Versions, tensorflow" in html


def test_with_the_probes_switched_off_the_section_is_a_note_saying_so():
    section = support(_data(_switched_off("pytorch"), _switched_off("tensorflow")))
    assert section is not None
    (note,) = section.blocks
    assert isinstance(note, Note)
    assert "support.enabled = false" in note.text and "support.enabled = true" in note.text
    assert "pytorch: the probes were switched off" in note.text


def test_no_results_no_section():
    assert support(dataclasses.replace(_data(_pytorch()), metrics=[], failed=[])) is None


@pytest.mark.parametrize("schema", [2])
def test_an_older_metrics_file_says_it_predates_the_probes(schema):
    old = _switched_off("pytorch").model_copy(update={"schema_version": schema})
    section = support(_data(old))
    assert section is not None and "predates the support probes" in section.blocks[0].text


def test_support_md_is_written_in_utf8_with_the_dash(tmp_path):
    path = write_support_md(tmp_path, [_pytorch(), _switched_off("tensorflow")])
    assert path is not None and "—" in path.read_bytes().decode("utf-8")
    assert os.access(path, os.R_OK)
