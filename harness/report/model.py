"""The report as format-neutral blocks: markdown.py and html.py only render these.

Text may carry two inline marks, ``**bold**`` and ```code```: markdown keeps them, HTML
turns them into <strong> and <code>. Table cells hold values (numbers, text, None);
their column says how to print them, so both renderers print the same digits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

MISSING = "—"


def absent(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Column:
    """A typed column: its name, its unit (shown in the header) and how values print.

    ``format``: "text"; "count" (an integer with thousands separators); "0.1", "0.2"
    (a number with that many decimals); "auto" (three decimals below 10, else two: a
    column whose rows carry different units); or "p" (a p-value: three decimals, two
    significant digits below 0.001). A text value in a number column (a label such as
    "2 (run's own)", or why a cell is empty) prints as it is.
    """

    name: str
    unit: str | None = None
    format: str = "text"
    align: Literal["left", "right"] | None = None  # default: right when there is a unit

    @property
    def header(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @property
    def numeric(self) -> bool:
        return self.align == "right" if self.align else self.unit is not None

    def cell(self, value: Any) -> str:
        if absent(value) or value == "":
            return MISSING
        if isinstance(value, str) or self.format == "text":
            return str(value)
        if self.format == "count":
            return f"{int(value):,}"
        if self.format == "p" and 0 < abs(value) < 0.001:
            return f"{value:.2g}"
        if self.format in ("p", "auto"):
            return f"{value:.3f}" if abs(value) < 10 or self.format == "p" else f"{value:.2f}"
        decimals = int(self.format.split(".")[1])
        return f"{float(value):,.{decimals}f}"


@dataclass(frozen=True)
class Row:
    values: list[Any]
    status: str | None = None  # the status of the result behind it (ok, failed, skipped...)


@dataclass(frozen=True)
class Table:
    columns: list[Column]
    rows: list[Row]
    how_to_read: str  # a sentence starting in lower case
    title: str | None = None  # a sub-table's own title (the section's heading otherwise)
    notes: list[str] = field(default_factory=list)  # what the reader must know to read it
    empty: str = "No data."  # said instead of a table without rows
    wide: bool = False  # many long columns: HTML lets it scroll and puts figures below

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def cells(self) -> list[list[str]]:
        return [[c.cell(v) for c, v in zip(self.columns, r.values, strict=True)] for r in self.rows]


@dataclass(frozen=True)
class Paragraph:
    """Sentences of one paragraph (markdown may set them apart; HTML runs them on)."""

    sentences: list[str]


@dataclass(frozen=True)
class Note:
    """Something that changes how a number reads: ``warn`` is boxed (a blockquote in
    markdown), ``remark`` is boxed in HTML and a plain paragraph in markdown."""

    text: str
    tone: Literal["warn", "remark"] = "warn"


@dataclass(frozen=True)
class StatusItem:
    text: str
    log: list[str] = field(default_factory=list)  # the last lines of a log that explain it


@dataclass(frozen=True)
class StatusList:
    """What went wrong, one item each; ``ok`` is said when nothing did."""

    items: list[StatusItem]
    ok: str


@dataclass(frozen=True)
class Figure:
    name: str  # the file stem under figures/
    svg: str
    wide: bool = False


@dataclass(frozen=True)
class Facts:
    """Labelled facts under a heading (a framework's provenance)."""

    heading: str
    items: list[tuple[str, str]]


@dataclass(frozen=True)
class Beside:
    """A table with its figures: side by side where there is room."""

    table: Table
    figures: list[Figure]


Block = Paragraph | Note | StatusList | Table | Figure | Facts | Beside


@dataclass(frozen=True)
class Section:
    heading: str
    blocks: Sequence[Block]
    how_to_read: str | None = None  # the section's reading guide (its first table's, usually)
    figure_ref: str | None = None  # the paper's figure this section's chart redraws


@dataclass(frozen=True)
class Report:
    title: str  # with ``code`` marks
    intro: list[Block]
    sections: list[Section]

    def figures(self) -> list[Figure]:
        """Every figure, in report order, once."""
        found: dict[str, Figure] = {}
        for section in self.sections:
            for block in section.blocks:
                for fig in block.figures if isinstance(block, Beside) else [block]:
                    if isinstance(fig, Figure):
                        found.setdefault(fig.name, fig)
        return list(found.values())
