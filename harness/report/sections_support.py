"""The support matrix section: the paper's Table IV, probed at the installed versions,
each framework's answer side by side with what the paper said (harness.results.support_matrix)."""

from __future__ import annotations

from harness.report.frame import ReportData
from harness.report.model import Column, Note, Row, Section, Table
from harness.results.support_matrix import (
    FIRST,
    PAPER,
    FrameworkSupport,
    any_probed,
    bound_text,
    frameworks,
    rows,
)
from harness_contract.frameworks import display_name

HEADING = "Support matrix (the paper's Table IV, probed)"
SWITCHED_OFF = (
    "The support probes did not run in this run, so there is no support matrix: {why}. "
    "With `support.enabled = true` (the default) each runner probes every item of "
    f"{PAPER} at its installed versions and the run gets `support.md`."
)


def _how(fws: list[FrameworkSupport]) -> str:
    return (
        "each capability of the paper's Table IV, probed at the installed versions on a tiny "
        f"model in a child process per framework, each probe bounded ({bound_text(fws)}): "
        "yes; no, with the error or reason seen; not probed, with why; timed out at the "
        "bound; — where a framework has no support data. The Paper columns say what "
        f"{PAPER} reported for the same item. support.md in the run directory adds what each "
        "probe saw."
    )


def support_table(fws: list[FrameworkSupport]) -> Table:
    columns = [Column("Area"), Column("Question"), *(Column(f.name) for f in fws)]
    columns += [Column(f"Paper: {display_name(n)}") for n in FIRST]
    table_rows = [Row([r.area, r.question, *r.cells, *r.claims]) for r in rows(fws)]
    notes = [f"Versions, {f.name}: {f.versions}." for f in fws]
    return Table(columns, table_rows, _how(fws), notes=notes, wide=True)


def support(data: ReportData) -> Section | None:
    """The matrix, or a note saying why there is none; None for a report with no
    framework results at all."""
    if not data.metrics and not data.failed:
        return None
    fws = frameworks(data.metrics, [(f.name, f.reason) for f in data.failed])
    if not any_probed(fws):
        whys = "; ".join(f"{f.name}: {f.why_missing}" for f in fws)
        return Section(HEADING, [Note(SWITCHED_OFF.format(why=whys), tone="remark")])
    table = support_table(fws)
    return Section(HEADING, [table], table.how_to_read)
