"""report.html: the report's sections as one self-contained page.

Inline CSS and inline SVG figures only — no scripts, fonts or URLs — so the file opens
offline, in a CI artifact viewer or attached to an e-mail, and shows exactly what was run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

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
)

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
  color: #1d1d1f; background: #fafafa; margin: 0; line-height: 1.45; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .4rem; padding-bottom: .25rem;
  border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .3rem; }
p.how { color: #555; font-size: .9rem; margin: .2rem 0 .8rem; max-width: 70em; }
code { font-family: ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace;
  font-size: .85em; background: #f0f0f0; padding: 0 .25em; border-radius: 3px; }
.warn { background: #fff4e0; border-left: 4px solid #e69f00; padding: .5rem .8rem;
  margin: .5rem 0; }
.bad { background: #fdecea; border-left: 4px solid #d55e00; padding: .5rem .8rem;
  margin: .5rem 0; }
.ok { background: #e8f5ee; border-left: 4px solid #009e73; padding: .5rem .8rem; }
ul.status { padding-left: 1.2rem; }
pre.log { font-size: .8rem; background: #fff; padding: .4rem .6rem; overflow-x: auto; }
.pair { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
div.tbl { overflow-x: auto; max-width: 100%; }
.pair > .tbl { flex: 1 1 560px; }
.pair.wide > .tbl { flex-basis: 100%; }
figure { margin: 0; flex: 0 1 500px; }
figure.wide { flex: 0 1 860px; }
figure svg { width: 100%; height: auto; border: 1px solid #e3e3e3; border-radius: 4px; }
table { border-collapse: collapse; font-size: .85rem; background: #fff; }
th, td { border: 1px solid #ddd; padding: .3rem .55rem; }
th { background: #f3f4f6; text-align: left; vertical-align: bottom; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.failed td, tr.missing td { background: #fdecea; }
tr.skipped td, tr.unavailable td { background: #fff8e6; }
dl.prov { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem;
  font-size: .9rem; margin: 0; }
dl.prov dt { font-weight: 600; color: #444; }
dl.prov dd { margin: 0; overflow-wrap: anywhere; }
"""


def inline(text: str) -> str:
    """Escape, then turn the model's two inline marks into <strong> and <code>."""
    html = escape(text)
    html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html)


def plain(text: str) -> str:
    """Headings and the page title: the marks dropped, the text escaped."""
    return escape(text.replace("`", ""))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def table_html(t: Table) -> str:
    """An HTML table; every cell escaped, number columns right-aligned, rows coloured by
    the status of the result behind them."""
    head = "".join(f"<th scope='col'>{escape(h)}</th>" for h in t.headers)
    body = []
    for row, cells in zip(t.rows, t.cells(), strict=True):
        status = row.status if row.status not in (None, "ok") else ""
        cls = f" class='{escape(status)}'"
        tds = "".join(
            f"<td class='num'>{escape(c)}</td>" if col.numeric else f"<td>{escape(c)}</td>"
            for col, c in zip(t.columns, cells, strict=True)
        )
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _note(n: Note) -> str:
    text = n.text
    if text.startswith("**") and text.endswith("**") and text.count("**") == 2:
        text = text[2:-2]  # a wholly bold note reads as a wall of bold; the box marks it already
    return f"<div class='warn'>{inline(text)}</div>"


def _table(t: Table) -> list[str]:
    """Notes first, beside the how-to-read, so the table and its figure stay together."""
    parts = [f"<p class='how'>{inline(n)}</p>" for n in t.notes]
    if t.title:
        parts.append(
            f"<h3>{escape(t.title)}</h3><p class='how'>{escape(_capital(t.how_to_read))}</p>"
        )
    body = table_html(t) if t.rows else f"<p>{escape(t.empty)}</p>"
    parts.append(f"<div class='tbl'>{body}</div>" if t.wide else body)
    return parts


def _beside(b: Beside) -> list[str]:
    """Table and its figure(s) side by side; they wrap below each other on narrow screens.
    Wide tables would scroll beside a figure, so they take the full width instead."""
    figs = "".join(f"<figure>{f.svg}</figure>" for f in b.figures)
    cls = "pair wide" if b.table.wide else "pair"
    notes = [f"<p class='how'>{inline(n)}</p>" for n in b.table.notes]
    body = table_html(b.table) if b.table.rows else f"<p>{escape(b.table.empty)}</p>"
    return [*notes, f"<div class='{cls}'><div class='tbl'>{body}</div>{figs}</div>"]


def _status(s: StatusList) -> str:
    if not s.items:
        return f"<p class='ok'>{inline(s.ok)}</p>"
    items = []
    for item in s.items:
        log = f"<pre class='log'>{escape(chr(10).join(item.log))}</pre>" if item.log else ""
        items.append(f"<li>{inline(item.text)}{log}</li>")
    return "<ul class='status bad'>" + "".join(items) + "</ul>"


def _facts(f: Facts) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{inline(v)}</dd>" for k, v in f.items)
    return f"<h3>{escape(f.heading)}</h3><dl class='prov'>{items}</dl>"


def _blocks(blocks: Sequence[Block]) -> list[str]:
    parts: list[str] = []
    figures: list[Figure] = []
    for block in [*blocks, None]:
        if isinstance(block, Figure):
            figures.append(block)  # consecutive figures share one row
            continue
        if figures:
            figs = "".join(
                f"<figure class='wide'>{f.svg}</figure>" if f.wide else f"<figure>{f.svg}</figure>"
                for f in figures
            )
            parts.append(f"<div class='pair'>{figs}</div>")
            figures = []
        if isinstance(block, Paragraph):
            parts.append("<p>" + " ".join(inline(s) for s in block.sentences) + "</p>")
        elif isinstance(block, Note):
            parts.append(_note(block))
        elif isinstance(block, StatusList):
            parts.append(_status(block))
        elif isinstance(block, Table):
            parts += _table(block)
        elif isinstance(block, Beside):
            parts += _beside(block)
        elif isinstance(block, Facts):
            parts.append(_facts(block))
    return parts


def _section(section: Section) -> str:
    heading = section.heading + (f" ({section.figure_ref})" if section.figure_ref else "")
    head = [f"<h2>{plain(heading)}</h2>"]
    if section.how_to_read:
        head.append(f"<p class='how'>{escape(_capital(section.how_to_read))}</p>")
    return "<section>\n" + "\n".join([*head, *_blocks(section.blocks)]) + "\n</section>"


def _intro(report: Report) -> list[str]:
    """The title and what ran, then the warnings in one run of boxes."""
    paragraphs = [b for b in report.intro if not isinstance(b, Note)]
    notes = [b for b in report.intro if isinstance(b, Note)]
    head = "\n".join([f"<h1>{plain(report.title)}</h1>", *_blocks(paragraphs)])
    return [head, "".join(_note(n) for n in notes)]


def page(title: str, body: list[str]) -> str:
    """One self-contained HTML page (no scripts, no external resources) in the report's
    style: every HTML file the harness writes (study and sweep reports) is made here."""
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{plain(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def render_html(report: Report) -> str:
    """The whole report as one self-contained HTML page."""
    return page(report.title, [*_intro(report), *(_section(s) for s in report.sections)])
