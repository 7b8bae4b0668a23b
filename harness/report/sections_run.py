"""The run around the numbers: title and warnings, status, provenance."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from harness.report.frame import ReportData
from harness.report.model import (
    MISSING,
    Block,
    Facts,
    Note,
    Paragraph,
    Section,
    StatusItem,
    StatusList,
    absent,
    one_line,
)
from harness.report.variants import versions_text
from harness.results.run_metrics import FailedFramework
from harness_contract.metrics import MetricsFile

SYNTHETIC_WARNING = (
    "**Warning — synthetic data ({}):** accuracy figures are not meaningful on synthetic "
    "data. Sizes and timings still describe the model and the machine."
)
UNTESTED_WARNING = (
    "**Warning — untested framework versions ({framework}):** {packages}. {how} Every "
    "figure of {framework} comes from versions the harness was not tested with: compare "
    "them with results of the tested versions knowing that more than the machine changed."
)
ALLOWED = "The run allowed them with `--allow-untested-versions`."
UNCHECKED = "The study ran without the runner's version check (driven in-process)."


def untested_text(m: MetricsFile) -> str | None:
    """``torch 2.11.0+cu130 (tested: 2.13.0)``, or None: the tested versions."""
    untested = m.provenance.untested_versions
    if not untested:
        return None
    return ", ".join(f"{u.package} {u.installed} (tested: {u.tested})" for u in untested)


def untested_warning(m: MetricsFile) -> str | None:
    packages = untested_text(m)
    if packages is None:
        return None
    how = ALLOWED if m.provenance.untested_versions_allowed else UNCHECKED
    return UNTESTED_WARNING.format(framework=m.framework, packages=packages, how=how)


def title(data: ReportData) -> str:
    run_ids = ", ".join(f"`{rid}`" for rid in dict.fromkeys(m.run_id for m in data.metrics))
    return f"Quantization comparison — run {run_ids}"


def _framework_states(data: ReportData) -> str:
    states = {m.framework: m.outcome for m in data.metrics}
    states |= {f.name: "failed" for f in data.failed}
    return ", ".join(f"{name} ({state})" for name, state in sorted(states.items()))


def intro(data: ReportData) -> list[Block]:
    """What ran, then everything that makes a number unfair to compare."""
    first = data.metrics[0]
    blocks: list[Block] = [
        Paragraph(
            [
                f"Spec `{first.spec_name}` (digest `{first.spec_digest}`), seed {first.seed}, "
                f"dataset kind **{first.dataset.kind}** (`{first.dataset.path}`).",
                f"Frameworks: {_framework_states(data)}.",
                *_model_sentence(first),
            ]
        )
    ]
    blocks += [Note(w) for w in mismatch_warnings(data.metrics)]
    blocks += [Note(w) for m in data.metrics if (w := untested_warning(m))]
    synthetic = [m.framework for m in data.metrics if m.dataset.kind == "synthetic"]
    if synthetic:
        blocks.append(Note(SYNTHETIC_WARNING.format(", ".join(synthetic))))
    return blocks


def _model_sentence(m: MetricsFile) -> list[str]:
    """The network every figure below is of (files from before the ViT do not say: they
    ran the ResNet)."""
    if m.model is None:
        return []
    return [f"Model: **{m.model.title}**, {m.model.parameters:,} parameters."]


def mismatch_warnings(metrics: list[MetricsFile]) -> list[str]:
    """Frameworks that ran different specs, seeds or data are not a comparison (rule 3)."""
    checks = {
        "spec digest": lambda m: m.spec_digest,
        "seed": lambda m: m.seed,
        "dataset kind": lambda m: m.dataset.kind,
        "dataset digest": lambda m: m.dataset.digest,
        "initial weight": lambda m: m.initial_weights,
        "model": lambda m: m.model.title if m.model else None,
    }
    warnings = []
    for label, key in checks.items():
        if len({key(m) for m in metrics}) > 1:
            values = ", ".join(f"{m.framework} `{key(m)}`" for m in metrics)
            warnings.append(
                f"**Not comparable:** the frameworks ran with different {label}s ({values})."
            )
    return warnings


def _failed_item(f: FailedFramework) -> str:
    if f.log_tail:
        return f"**{f.name}** run failed: {f.STOPPED}; the last lines of `{f.name}/{f.log.name}`:"
    return f"**{f.name}** run failed: {f.reason}"


def status(data: ReportData, caveats: list[str]) -> Section:
    """Everything that did not go to plan, first; "all complete" only when nothing failed."""
    items = [StatusItem(f"**unreadable** {p} — left out of every table") for p in data.problems]
    by_name = {m.framework: m for m in data.metrics} | {f.name: f for f in data.failed}
    for name in sorted(by_name):
        run = by_name[name]
        if isinstance(run, FailedFramework):
            items.append(StatusItem(_failed_item(run), run.log_tail))
        elif run.outcome != "complete":
            error = f": {one_line(run.error)}" if run.error else ""
            tail = data.log_tails.get(run.framework, [])
            context = f"; the last lines of `{run.framework}/runner.log`:" if tail else ""
            items.append(
                StatusItem(f"**{run.framework}** run is {run.outcome}{error}{context}", tail)
            )
    failed_names = {f.name for f in data.failed}
    for _, row in data.frame.iterrows():
        if row["status"] != "ok" and row["framework"] not in failed_names:
            reason = "no reason recorded" if absent(row["reason"]) else row["reason"]
            variant = f"**{row['framework']} / {row['variant']}**"
            items.append(StatusItem(f"{variant} {row['status']}: {one_line(reason)}"))
    for _, row in data.rungs.iterrows():
        if row["status"] == "failed":
            reason = "no reason recorded" if absent(row["reason"]) else row["reason"]
            where = f"**{row['framework']} / {row['variant']} on {row['runtime']}**"
            items.append(StatusItem(f"{where} failed: {one_line(reason)}"))
    ok = "All frameworks complete; every variant ok."
    blocks: list[Block] = [StatusList(items, ok)]
    blocks += [Note(c, "remark") for c in caveats]
    return Section("Status", blocks)


def _profilers_text(m: MetricsFile) -> str:
    passes = [p for v in m.variants.values() for p in v.profiles]
    if not passes:
        return "no profiler passes recorded"
    tools = Counter(p.tool for p in passes if p.status == "ok" and p.tool)
    parts = [f"{tool} ({n} pass{'es' if n > 1 else ''})" for tool, n in tools.items()]
    others = Counter(p.status for p in passes if p.status != "ok")
    parts += [f"{n} {status}" for status, n in sorted(others.items())]
    return ", ".join(parts)


def provenance_items(m: MetricsFile) -> list[tuple[str, str]]:
    """Label and value (with `code` marks) per fact."""
    p, d = m.provenance, m.dataset
    gpu = ", ".join(
        f"{label} {value}"
        for label, value in (
            ("GPU", p.gpu),
            ("CUDA", p.cuda),
            ("cuDNN", p.cudnn),
            ("driver", p.gpu_driver),
        )
        if value
    )
    versions = f"{versions_text(m) or MISSING}; harness {p.harness_version}"
    if untested := untested_text(m):
        how = "allowed by `--allow-untested-versions`"
        if not p.untested_versions_allowed:
            how = "not checked by the runner"
        versions += f"; **untested**: {untested}, {how}"
    who = [f"uid {p.uid}"] if p.uid is not None else []
    if p.network_interfaces:
        who.append(f"network interfaces: {', '.join(p.network_interfaces)}")
    return [
        ("Framework versions", versions),
        ("Initial weights", f"`{m.initial_weights}`"),
        ("Spec", f"`{m.spec_name}`, digest `{m.spec_digest}`, seed {m.seed}"),
        ("Runtime", "; ".join([p.runtime, *who])),
        ("Python", f"{one_line(p.python)}; platform: {p.platform}; host: {p.hostname}"),
        ("CPU", f"{p.cpu_model} ({p.cpu_count} cores); flags: {', '.join(p.cpu_flags) or MISSING}"),
        ("Threads", f"{p.threads}; device: {p.device}" + (f"; {gpu}" if gpu else "")),
        (
            "Dataset",
            f"`{d.path}` ({d.kind}, {d.train_images:,} train / {d.test_images:,} test images), "
            f"digest `{d.digest}`",
        ),
        ("Profilers", _profilers_text(m)),
        ("Run", f"`{m.run_id}`; started: {m.started_at}; updated: {m.updated_at}; {m.outcome}"),
    ]


def provenance(data: ReportData) -> Section:
    how = "where and with what each framework ran; threads are the intra-op thread count."
    return Section(
        "Provenance", [Facts(m.framework, provenance_items(m)) for m in data.metrics], how
    )


def frameworks(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["framework"]))
