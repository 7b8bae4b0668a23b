"""report.md: the report's sections as GitHub-flavoured markdown (figures are files beside it)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.report.model import (
    Beside,
    Block,
    Facts,
    Figure,
    Note,
    Paragraph,
    Report,
    Section,
    StatusList,
    Table,
    one_line,
)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table; cells are escaped so a '|' cannot break it."""

    def line(cells: Sequence[str]) -> str:
        escaped = (one_line(str(c)).replace("|", "\\|") for c in cells)
        return "| " + " | ".join(escaped) + " |"

    body = [line(headers), "|" + "|".join(" --- " for _ in headers) + "|"]
    body += [line(row) for row in rows]
    return "\n".join(body)


def _table(t: Table) -> list[str]:
    parts = [f"*{t.title}:* {t.how_to_read}"] if t.title else []
    parts.append(markdown_table(t.headers, t.cells()) if t.rows else t.empty)
    return parts + list(t.notes)


def _figure_links(figures: Sequence[Figure]) -> str:
    """Figures are written to figures/*.svg beside the report; markdown links them."""
    return " ".join(f"![{f.name}](figures/{f.name}.svg)" for f in figures)


def _status(s: StatusList) -> str:
    if not s.items:
        return s.ok
    lines = []
    for item in s.items:
        lines.append(f"- {item.text}")
        if item.log:  # indented under its item
            lines += ["", "  ```text", *(f"  {line}" for line in item.log), "  ```", ""]
    return "\n".join(lines).rstrip("\n")


def _block(block: Block) -> list[str]:
    if isinstance(block, Paragraph):
        return list(block.sentences)
    if isinstance(block, Note):
        return [f"> {block.text}" if block.tone == "warn" else block.text]
    if isinstance(block, StatusList):
        return [_status(block)]
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Beside):
        return _table(block.table) + [_figure_links(block.figures)]
    if isinstance(block, Facts):
        return [f"### {block.heading}\n\n" + "\n".join(f"- {k}: {v}" for k, v in block.items)]
    if isinstance(block, Figure):
        return [_figure_links([block])]
    raise TypeError(f"no markdown for {type(block).__name__}")


def _section(section: Section) -> str:
    parts = [f"## {section.heading}"]
    if section.how_to_read:
        parts.append(f"*How to read this:* {section.how_to_read}")
    for block in section.blocks:
        parts += _block(block)
    return "\n\n".join(parts)


def render_markdown(report: Report) -> str:
    """The whole report: the title and what ran, then every section in order."""
    head = [f"# {report.title}"] + [p for b in report.intro for p in _block(b)]
    return "\n\n".join(["\n\n".join(head), *(_section(s) for s in report.sections)]) + "\n"
