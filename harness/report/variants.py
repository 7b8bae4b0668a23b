"""One typed row per framework x variant: every figure except latency by batch size.

Every figure keeps the device and threads it was taken with, so a reader never
compares unlike measurements without being told. Latency by batch size and threads
is the long table in latency.py; results.csv pivots it beside these columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.results.profile_passes import PASSES, ProfilePass
from harness.results.run_metrics import FailedFramework
from harness.results.stats import mcnemar_p, wilson_interval
from harness_contract.metrics import VARIANTS, MetricsFile, RungMetrics, VariantMetrics
from harness_contract.metrics.figures import AccuracyStats
from harness_contract.runtimes import primary

MIB = 2**20
MEMORY_PARTS = ("", "training_", "inference_")


def join_values(values: Iterable[Any]) -> Any:
    """One value if all agree, else every distinct value listed, so a mix is visible."""
    distinct = list(dict.fromkeys(values))
    if not distinct:
        return None
    return distinct[0] if len(distinct) == 1 else ", ".join(str(v) for v in distinct)


def _dist(name: str) -> str:
    return name.lower().replace("-", "_")  # "tf-keras" (pin) and "tf_keras" (provenance)


def versions_text(metrics: MetricsFile) -> str:
    """``torch 2.11.0+cu130 (untested), torchao 0.18.0``: a version the runner was not
    tested with is marked wherever versions are shown (results.csv too)."""
    untested = {_dist(u.package) for u in metrics.provenance.untested_versions}
    return ", ".join(
        f"{name} {ver}" + (" (untested)" if _dist(name) in untested else "")
        for name, ver in metrics.provenance.framework_versions.items()
    )


def primary_runtime(framework: str, v: VariantMetrics) -> str | None:
    """The runtime a variant's own figures were taken on; files older than schema 3 do not
    say, and then it is the one the harness has always used for that variant."""
    return v.runtime or primary(framework, v.variant)


def own_threads(v: VariantMetrics | RungMetrics) -> int | None:
    """The run's own thread count for this variant's latency: its rows come first."""
    return v.latency[0].threads if v.latency else None


def _mib(nbytes: int | None) -> float | None:
    return None if nbytes is None else nbytes / MIB


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100


def _increase_pct(value: float | None, reference: float | None) -> float | None:
    """(value / reference - 1) * 100, or None when either side is missing or zero."""
    if value is None or not reference:
        return None
    return (value / reference - 1) * 100


def _per_epoch(variant: VariantMetrics | None) -> float | None:
    training = variant.training if variant else None
    if training is None or training.epochs == 0:
        return None
    return training.wall_s / training.epochs


def _accuracy_cells(
    v: VariantMetrics | RungMetrics, reference: AccuracyStats | None
) -> dict[str, Any]:
    """Top-1 with its Wilson interval; beside the framework's fp32 ``reference`` (None for
    the baseline itself), the change and McNemar's exact p where the discordant images
    were recorded (files before them have none)."""
    acc = v.accuracy
    if acc is None:
        return {}
    low, high = wilson_interval(round(acc.top1 * acc.n), acc.n)
    discordant = (acc.only_this_correct, acc.only_fp32_correct)
    recorded = reference is not None and None not in discordant
    return {
        "accuracy_pct": _pct(acc.top1),
        "agreement_with_fp32_pct": _pct(acc.agreement_with_fp32),
        "accuracy_n": acc.n,
        "accuracy_device": acc.device,
        "accuracy_ci_low_pct": _pct(low),
        "accuracy_ci_high_pct": _pct(high),
        "accuracy_change_pp": None if reference is None else _pct(acc.top1 - reference.top1),
        "accuracy_mcnemar_p": mcnemar_p(*discordant) if recorded else None,  # type: ignore[arg-type]
        "accuracy_only_this_correct": acc.only_this_correct,
        "accuracy_only_fp32_correct": acc.only_fp32_correct,
        **_repeat_cells(acc),
    }


def _repeat_cells(acc: AccuracyStats) -> dict[str, Any]:
    """The evaluation's first batch run twice: how far the logits moved, how many
    predictions changed, at which threads (all None for files from before the check)."""
    rep = acc.repeat
    return {
        "accuracy_repeat_max_abs_diff": None if rep is None else rep.max_abs_diff,
        "accuracy_repeat_changed": None if rep is None else rep.changed_predictions,
        "accuracy_repeat_images": None if rep is None else rep.images,
        "accuracy_repeat_threads": None if rep is None else rep.threads,
    }


def fp32_size_like(m: MetricsFile, runtime: str | None, fmt: str) -> tuple[int, str] | None:
    """The fp32 model's size in the same runtime and format as an int8 model: (bytes,
    format), so a reduction never compares two serializations (int8 .tflite over the Keras
    .h5). The baseline's own file, its rung on that runtime, or the same model written in
    that format beside it (``size.other_formats``); None when there is none."""
    base = m.variant("baseline")
    if base is None:
        return None
    if base.size is not None and base.size.format == fmt:
        return base.size.bytes, fmt
    for rung in base.rungs:
        if rung.runtime == runtime and rung.size is not None and rung.size.format == fmt:
            return rung.size.bytes, fmt
    other = base.size.other_formats if base.size is not None else {}
    for name, nbytes in other.items():
        if name.split("_")[0] == fmt:
            return nbytes, fmt
    return None


def _size_cells(
    v: VariantMetrics | RungMetrics, m: MetricsFile, runtime: str | None
) -> dict[str, Any]:
    if v.size is None:
        return {}
    if v.precision == "fp32":  # its own reference: a 0 % reduction, as the paper's Table I
        reference: tuple[int, str] | None = (v.size.bytes, v.size.format)
    else:
        reference = fp32_size_like(m, runtime, v.size.format)
    reduction = (1 - v.size.bytes / reference[0]) * 100 if reference and reference[0] else None
    return {
        "size_mib": _mib(v.size.bytes),
        "size_format": v.size.format,
        "parameters": v.size.parameters,
        "size_reduction_pct": reduction,
        "size_fp32_mib": _mib(reference[0]) if reference else None,
    }


def _training_cells(v: VariantMetrics, baseline: VariantMetrics | None) -> dict[str, Any]:
    tr = v.training
    if tr is None:
        return {}
    cells = {
        "train_s": tr.wall_s,
        "train_epochs": tr.epochs,
        "images_per_s": tr.images_per_s,
        "train_device": tr.device,
        "train_threads": tr.threads,
    }
    if v.variant == "qat":  # Table II compares QAT fine-tuning with baseline training
        base_wall = baseline.training.wall_s if baseline and baseline.training else None
        cells["qat_time_increase_pct"] = _increase_pct(_per_epoch(v), _per_epoch(baseline))
        cells["qat_time_increase_total_pct"] = _increase_pct(tr.wall_s, base_wall)
    return cells


def _conversion_cells(v: VariantMetrics | RungMetrics) -> dict[str, Any]:
    conv = v.conversion
    if conv is None:
        return {}
    return {
        "quant_flow": conv.flow,
        "calibration_s": conv.calibration_s,
        "calibration_samples": conv.calibration_samples,
        "conversion_s": conv.conversion_s,
        "conversion_device": conv.device,
    }


def _latency_meta_cells(v: VariantMetrics | RungMetrics) -> dict[str, Any]:
    """Where latency was taken; the values themselves are in the long latency table."""
    own = own_threads(v)
    loads = [lat.load_1m for lat in v.latency if lat.load_1m is not None]
    notes = [n for n in v.notes if n.startswith("no latency at")]
    return {
        "latency_device": join_values(lat.device for lat in v.latency),
        "latency_threads": join_values(str(lat.threads) for lat in v.latency if lat.threads == own),
        "latency_max_load_1m": max(loads) if loads else None,
        "latency_sweep_notes": "; ".join(notes) if notes else None,
    }


def _profile_cells(passes: list[ProfilePass]) -> dict[str, Any]:
    """Each pass's headline shares on its main device, read from its one pass record."""
    cells: dict[str, Any] = {}
    for kind in PASSES:
        p = next((p for p in passes if p.kind == kind), None)
        if p is None:
            continue
        prefix = f"profile_{kind}"
        cells[f"{prefix}_status"] = p.profiler_status
        main = p.main()
        if main is not None:
            cells[f"{prefix}_device"] = main.device
            cells[f"{prefix}_convolution_pct"] = _pct(main.share("convolution"))
            cells[f"{prefix}_quantize_pct"] = _pct(main.share("quantize"))
            cells[f"{prefix}_total_ms"] = main.total_ms
    return cells


def _memory_cells(v: VariantMetrics) -> dict[str, Any]:
    if v.memory is None:
        return {}
    return {
        f"{part}peak_{kind}_mib": _mib(getattr(v.memory, f"{part}peak_{kind}_bytes"))
        for kind in ("rss", "gpu")
        for part in MEMORY_PARTS
    }


def _run_cells(m: MetricsFile) -> dict[str, Any]:
    return {
        "framework": m.framework,
        "framework_versions": versions_text(m),
        "cpu_model": m.provenance.cpu_model,
        "cpu_count": m.provenance.cpu_count,
        "device": m.provenance.device,
        "threads": m.provenance.threads,
        "spec_name": m.spec_name,
        "spec_digest": m.spec_digest,
        "model": m.model.title if m.model else None,
        "seed": m.seed,
        "dataset_kind": m.dataset.kind,
        "run_status": m.outcome,
    }


def _precision(variant: str) -> str:
    return "fp32" if variant == "baseline" else "int8"


def variant_rows(m: MetricsFile, passes: list[ProfilePass]) -> list[dict[str, Any]]:
    """Baseline, PTQ and QAT of one framework; a variant the runner never reached still
    gets a row, so gaps are visible."""
    rows = []
    baseline = m.variant("baseline")
    for name in VARIANTS:
        row = _run_cells(m)
        v = m.variant(name)
        if v is None:
            rows.append(
                row
                | {
                    "variant": name,
                    "runtime": primary(m.framework, name),
                    "runtime_role": "primary",
                    "precision": _precision(name),
                    "status": "missing",
                    "reason": f"not in metrics.json (run status: {m.status})",
                }
            )
            continue
        runtime = primary_runtime(m.framework, v)
        row |= {"variant": name, "runtime": runtime, "runtime_role": "primary"}
        row |= {"precision": v.precision, "status": v.status, "reason": v.reason}
        own_passes = [p for p in passes if p.variant == name]
        reference = baseline.accuracy if baseline is not None and v is not baseline else None
        for cells in (
            _accuracy_cells(v, reference),
            _size_cells(v, m, runtime),
            _training_cells(v, baseline),
            _conversion_cells(v),
            _latency_meta_cells(v),
            _profile_cells(own_passes),
            _memory_cells(v),
        ):
            row |= cells
        rows.append(row)
    return rows


def rung_rows(m: MetricsFile) -> list[dict[str, Any]]:
    """Every variant on each of its other runtimes, after the variant's own row: the
    figures a rung has (accuracy, size, compile time, its own quantization, latency)."""
    rows = []
    baseline = m.variant("baseline")
    reference = baseline.accuracy if baseline is not None else None  # the framework's fp32
    for name in VARIANTS:
        v = m.variant(name)
        for rung in v.rungs if v is not None else []:
            row = _run_cells(m) | {"variant": name, "runtime": rung.runtime}
            row |= {"runtime_role": "rung", "precision": rung.precision}
            row |= {"status": rung.status, "reason": rung.reason, "compile_s": rung.compile_s}
            if rung.compile_s_by_batch:
                row["compile_per_batch_s"] = sum(rung.compile_s_by_batch.values())
            for cells in (
                _accuracy_cells(rung, reference),
                _size_cells(rung, m, rung.runtime),
                _conversion_cells(rung),
                _latency_meta_cells(rung),
            ):
                row |= cells
            if rung.training is not None:
                row |= {"train_s": rung.training.wall_s, "train_epochs": rung.training.epochs}
            rows.append(row)
    return rows


def failed_framework_rows(failed: FailedFramework) -> list[dict[str, Any]]:
    """A framework whose runner left no metrics.json: every variant failed, with the reason."""
    return [
        {
            "framework": failed.name,
            "variant": name,
            "runtime": primary(failed.name, name),
            "runtime_role": "primary",
            "precision": _precision(name),
            "status": "failed",
            "reason": failed.reason,
            "run_status": "failed",
        }
        for name in VARIANTS
    ]
