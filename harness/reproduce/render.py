"""The verdict, said three ways: a table on the terminal (rich, like the run summary),
reproduction.md and .html for people (the study report's blocks and renderers) and
reproduction.json for machines, all in the rerun's directory and written atomically."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.report import model, write_pages
from harness.reproduce.compare import (
    AGREEMENT_TOLERANCE_PTS,
    SIZE_TOLERANCE,
    TOP1_TOLERANCE_PTS,
    Figure,
    Reproduction,
    VariantResult,
)
from harness.reproduce.latency_band import CONFIDENCE
from harness.run.rundir import RunDir
from harness_contract.exit_codes import ExitCode
from harness_contract.fs.atomic import write_json_atomic

PIPED_WIDTH = 120
TOLERANCES = (
    f"figures agree when top-1 is within {TOP1_TOLERANCE_PTS} points, agreement with fp32 "
    f"within {AGREEMENT_TOLERANCE_PTS} points and size within {SIZE_TOLERANCE:.1%}; latency "
    f"p50 is within noise when the bootstrap {CONFIDENCE:.0%} interval of new/old holds 1.0"
)
COLUMNS = ("framework", "variant", "artifacts", "top-1 %", "agree %", "size", "p50 new/old")


def verdict_line(rep: Reproduction) -> str:
    if rep.reproduced:
        n = sum(len(v.artifacts) for fw in rep.frameworks for v in fw.variants)
        return f"reproduced: all {n} artifacts bit-identical ({rep.rerun})"
    return f"not reproduced: {'; '.join(rep.reasons())}"


def rows(rep: Reproduction, detail: bool = True) -> list[tuple[str, ...]]:
    """One row per framework x variant; ``detail`` False sums up the latency rows in one
    line (the terminal), True lists each batch size and thread count (reproduction.md)."""
    latency = _latency if detail else _latency_summary
    out = []
    for fw in rep.frameworks:
        if fw.problem:
            out.append((fw.framework, "—", fw.problem, "", "", "", ""))
        for v in fw.variants:
            out.append((fw.framework, v.variant, _artifacts(v), *_figure_cells(v), latency(v)))
    return out


def print_table(rep: Reproduction, console: Console | None = None) -> None:
    table = Table(title=f"reproduction of {rep.original.name}", title_justify="left")
    for col in COLUMNS:
        table.add_column(col, no_wrap=col in ("framework", "variant", COLUMNS[-1]))
    for row in rows(rep, detail=False):
        table.add_row(*row)
    # Piped output has no width to fit: 80 columns would fold every cell; a terminal
    # keeps its own width.
    console = console or Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
    console.print(table)
    for line in explanations(rep):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def explanations(rep: Reproduction) -> list[str]:
    """For each framework whose bits differ: why, from the recorded contexts, and whether
    its figures still agree within the stated tolerances (named when they do not)."""
    out = []
    for fw in rep.frameworks:
        differ = [v for v in fw.variants if not v.bit_identical and not v.problem]
        if not differ:
            continue
        why = f"recorded context differs: {_context(fw.context)}" if fw.context else SAME_CONTEXT
        outside = [
            f"{v.variant} {f.name} {f.difference:+g} {f.unit}"
            for v in differ
            for f in v.figures
            if f.within is False
        ]
        figures = (
            f"figures outside the tolerances: {', '.join(outside)}"
            if outside
            else "the figures still agree within the tolerances"
        )
        out.append(f"{fw.framework}: bits differ; {why}; {figures}")
    if out:
        out.append(f"tolerances: {TOLERANCES}")
    return out


def write_files(rep: Reproduction, exit_code: int) -> tuple[Path, Path]:
    """reproduction.md, .html and .json in the rerun's directory; the md and json paths."""
    run = RunDir(rep.rerun)
    built = report(rep)
    write_pages(built, run.reproduction_md, run.reproduction_html)
    write_json_atomic(run.reproduction_json, to_json(rep, exit_code))
    return run.reproduction_md, run.reproduction_json


def write_interrupted(rerun: Path, original: Path) -> None:
    """Mark a reproduction stopped before its verdict (its rerun is incomplete)."""
    run = RunDir(rerun)
    write_json_atomic(
        run.reproduction_json,
        {"original": str(original), "rerun": str(rerun), "verdict": "interrupted"}
        | {"exit_code": int(ExitCode.INTERRUPTED)},
    )
    built = model.Report(
        f"Reproduction of `{original.name}`",
        [
            model.Paragraph(
                [
                    f"**Interrupted** before its verdict: this directory holds an incomplete "
                    f"rerun; reproduce `{original}` again."
                ]
            )
        ],
        [],
    )
    write_pages(built, run.reproduction_md, run.reproduction_html)


def report(rep: Reproduction) -> model.Report:
    """The verdict as the study report's blocks: which runs, the verdict, one row per
    framework x variant, and why bits differ where they do."""
    runs = model.Facts("Runs", [("Original", f"`{rep.original}`"), ("Rerun", f"`{rep.rerun}`")])
    verdict = model.Paragraph([f"**Verdict** {verdict_line(rep)}"])
    table = model.Table(
        [model.Column(name) for name in COLUMNS],
        [model.Row(list(row)) for row in rows(rep)],
        how_to_read="",
    )
    how = (
        f"tolerances: {TOLERANCES}. Latency is never part of bit-identical. OUT: outside "
        "the tolerance or the noise band"
    )
    sections = [model.Section("Figures and artifacts", [table], how_to_read=how)]
    if why := explanations(rep):
        sections.append(model.Section("Why bits differ", [model.Paragraph(why)]))
    return model.Report(f"Reproduction of `{rep.original.name}`", [runs, verdict], sections)


SAME_CONTEXT = (
    "the recorded context is the same (CPU and ISA, threads, versions, device, determinism "
    "switches, image): the difference is not explained by what the runs record"
)


def to_json(rep: Reproduction, exit_code: int) -> dict[str, Any]:
    return {
        "original": str(rep.original),
        "rerun": str(rep.rerun),
        "verdict": "reproduced" if rep.reproduced else "not reproduced",
        "exit_code": exit_code,
        "reasons": rep.reasons(),
        "tolerances": {
            "top1_pts": TOP1_TOLERANCE_PTS,
            "agreement_pts": AGREEMENT_TOLERANCE_PTS,
            "size_relative": SIZE_TOLERANCE,
            "latency_confidence": CONFIDENCE,
        },
        "original_check": [
            {"file": c.where, "variant": c.variant, "status": c.status} for c in rep.checks
        ],
        "frameworks": [
            {
                "framework": fw.framework,
                "problem": fw.problem,
                "context_differences": [
                    {"field": d.field, "original": d.old, "rerun": d.new} for d in fw.context
                ],
                "variants": [_variant_json(v) for v in fw.variants],
            }
            for fw in rep.frameworks
        ],
    }


def _variant_json(v: VariantResult) -> dict[str, Any]:
    return {
        "variant": v.variant,
        "problem": v.problem,
        "bit_identical": v.bit_identical,
        "figures_agree": v.figures_agree,
        "artifacts": [
            {"file": a.file, "original": a.old_sha256, "rerun": a.new_sha256}
            | {"identical": a.identical}
            for a in v.artifacts
        ],
        "figures": [
            {
                "name": f.name,
                "unit": f.unit,
                "original": f.old,
                "rerun": f.new,
                "difference": f.difference,
                "tolerance": f.tolerance,
                "within": f.within,
            }
            for f in v.figures
        ],  # fmt: skip
        "latency": [
            {
                "batch_size": r.batch_size,
                "threads": r.threads,
                "original_p50_ms": r.old_p50_ms,
                "rerun_p50_ms": r.new_p50_ms,
                "ratio": r.band.ratio if r.band else None,
                "interval": [r.band.low, r.band.high] if r.band else None,
                "within_noise": r.band.within_noise if r.band else None,
            }
            for r in v.latency
        ],
    }


# ---------------------------------------------------------------- cells


def _artifacts(v: VariantResult) -> str:
    if v.problem:
        return v.problem
    if v.bit_identical:
        return f"identical ({len(v.artifacts)})"
    return f"DIFFER: {', '.join(v.differing)}"


def _figure_cells(v: VariantResult) -> tuple[str, str, str]:
    by_name = {f.name: f for f in v.figures}
    return (
        _pts(by_name.get("top-1")),
        _pts(by_name.get("agreement with fp32")),
        _size(by_name.get("size")),
    )


def _pts(f: Figure | None) -> str:
    if f is None or f.new is None or f.old is None or f.difference is None:
        return "—"
    if f.difference == 0:
        return f"{f.new:.1f} same"
    mark = "" if f.within else " OUT"
    return f"{f.old:.1f}->{f.new:.1f} ({f.difference:+.2f}){mark}"


def _size(f: Figure | None) -> str:
    if f is None or f.new is None or f.old is None or f.difference is None:
        return "—"
    if f.difference == 0:
        return "same"
    mark = "" if f.within else " OUT"
    return f"{f.difference:+.0f} B{mark}"


def _latency(v: VariantResult) -> str:
    parts = []
    for r in v.latency:
        row = f"b{r.batch_size} {r.threads}t"  # a run measures at its threads and at 1
        if r.band is None:
            parts.append(f"{row}: no rerun row")
        elif r.band.low is None or r.band.high is None:
            parts.append(f"{row}: {r.band.ratio:.2f}x (no samples)")
        else:
            noise = "in noise" if r.band.within_noise else "OUT of noise"
            span = f"{r.band.low:.2f}-{r.band.high:.2f}"
            parts.append(f"{row}: {r.band.ratio:.2f}x ({span}) {noise}")
    return "\n".join(parts) or "—"


def _latency_summary(v: VariantResult) -> str:
    """How many latency rows are within noise, and the widest ratio seen."""
    bands = [r.band for r in v.latency if r.band is not None and r.band.within_noise is not None]
    if not bands:
        return "—"
    inside = sum(b.within_noise for b in bands)
    widest = max(bands, key=lambda b: abs(b.ratio - 1.0))
    return f"{inside}/{len(bands)} in noise\nwidest {widest.ratio:.2f}x"  # two short lines


def _context(diffs: list) -> str:
    return "; ".join(d.describe() for d in diffs)
