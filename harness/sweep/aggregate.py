"""The sweep's statistics, from the points' own metrics.json files and latency samples.

Per framework x variant x grid cell, over seeds: n, mean, sd and the Student-t interval
of top-1, agreement with fp32 and training time. Latency p50 with the run as the unit:
the mean of the runs' own p50s and the t interval over them (stats.runs_interval); a
cell with one run gets that run's own bootstrap, labelled "within one run". Runs timed
while the load average exceeded the cores are left out of latency and named. Paired
differences over seeds (same seed, hence the same initial weights and input stream):
PTQ - baseline and QAT - baseline per framework, PyTorch - TensorFlow per variant, each
with its interval, paired-t p-value and unadjusted verdict, and a Holm-adjusted verdict
across the cell's comparisons.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.reproduce.latency_band import load_samples
from harness.results import stats
from harness.results.run_metrics import read_run
from harness.sweep.index import PointRecord, SweepDir
from harness.sweep.plan import SweepSpec, served_cells
from harness_contract.errors import HarnessError
from harness_contract.frameworks import FRAMEWORKS
from harness_contract.metrics import VARIANTS

# Figures summarized over seeds: (key, label, unit).
METRICS = (
    ("top1_pct", "top-1", "%"),
    ("agreement_pct", "agreement with fp32", "%"),
    ("train_s", "training time", "s"),
)
DIFFERENCE_METRIC = "top1_pct"  # the headline figure the paired differences are about


@dataclass(frozen=True)
class RunLatency:
    """One run's latency at one batch size and thread count, and how busy the machine was."""

    point: str
    p50_ms: float
    samples: Path | None  # the raw per-call samples file, when the run saved one
    load_1m: float | None  # the 1-minute load average when timing began
    cores: int | None  # the cores the run could use
    host: str = "unknown"  # the machine that timed it (the Ray node, or the runner's hostname)

    @property
    def contended(self) -> bool:
        """Other work competed for the CPU: the run report warns, the sweep leaves it out."""
        return self.load_1m is not None and self.cores is not None and self.load_1m > self.cores

    def describe(self) -> str:
        return f"{self.point} (load {self.load_1m:.1f} on {self.cores} cores)"


@dataclass
class Observation:
    """One variant of one point: a seed's figures."""

    framework: str
    variant: str
    cell: str
    seed: int
    values: dict[str, float | None]
    latency: dict[tuple[int, int], RunLatency] = field(default_factory=dict)  # (batch, threads)


@dataclass(frozen=True)
class SummaryRow:
    framework: str
    variant: str
    cell: str
    metric: str
    unit: str
    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None
    seeds: list[int]
    note: str | None = None  # "no spread observed (n = 3)", "clipped to [0, 100] %"


@dataclass(frozen=True)
class LatencyRow:
    framework: str
    variant: str
    cell: str
    batch_size: int
    threads: int
    runs: int  # runs behind the figure (contended ones left out)
    p50_ms: float | None  # the mean of the runs' p50s; one run: its own p50
    low_ms: float | None
    high_ms: float | None
    basis: str  # what the interval resampled: "t over 3 runs' p50", "within one run (...)"
    excluded: list[str] = field(default_factory=list)  # contended runs left out, with load
    note: str | None = None
    hosts: list[str] = field(default_factory=list)  # the machines behind the figure
    # Set where the frameworks' rows of one cell, batch and thread count were timed on
    # different machines: side by side they compare hosts as much as frameworks.
    placement: str | None = None


@dataclass(frozen=True)
class DifferenceRow:
    comparison: str  # "ptq - baseline", "qat - baseline", "pytorch - tensorflow"
    within: str  # the framework (variant differences) or the variant (framework ones)
    cell: str
    metric: str
    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None
    verdict: str  # per comparison, unadjusted
    seeds: list[int]
    p_value: float | None = None  # paired t, two-sided; None where no verdict is given
    p_holm: float | None = None  # Holm-adjusted across the cell's tested comparisons
    holm_verdict: str | None = None  # "distinguishable" / "not distinguishable" after Holm
    holm_family: int = 0  # how many of the cell's comparisons were tested (Holm's m)
    note: str | None = None


@dataclass
class SweepStats:
    confidence: float
    summary: list[SummaryRow]
    latency: list[LatencyRow]
    differences: list[DifferenceRow]
    problems: list[str]
    points: dict[str, int]  # status -> count

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def observations(
    sweep: SweepDir, records: dict[str, PointRecord], spec: SweepSpec | None = None
) -> tuple[list[Observation], list[str]]:
    """Every ok variant of every finished point's metrics.json (unreadable ones named),
    under each grid cell the point stands for (with ``spec``: a TensorFlow point serves
    every cell that differs only in a pytorch.* key)."""
    out: list[Observation] = []
    problems: list[str] = []
    for record in records.values():
        run_dir = sweep.point_dir(record.name)
        if record.status != "ok" or not run_dir.is_dir():
            continue
        try:
            results = read_run(run_dir)
        except HarnessError as exc:
            problems.append(f"{record.name}: {exc.one_line()}")
            continue
        problems += [f"{record.name}: {p}" for p in results.problems]
        cells = served_cells(spec, record.point) if spec else [record.point.cell_label]
        for fw_dir, metrics in results.found:
            cores = metrics.provenance.cpu_count
            for name, variant in metrics.variants.items():
                if variant.status != "ok":
                    continue
                acc = variant.accuracy
                agreement = acc.agreement_with_fp32 if acc else None
                values = {
                    "top1_pct": None if acc is None else acc.top1 * 100,
                    "agreement_pct": None if agreement is None else agreement * 100,
                    "train_s": variant.training.wall_s if variant.training else None,
                }
                latency = {
                    (lat.batch_size, lat.threads): RunLatency(
                        record.name,
                        lat.p50_ms,
                        fw_dir.path / lat.samples_file if lat.samples_file else None,
                        lat.load_1m,
                        cores,
                        record.node or metrics.provenance.hostname,
                    )
                    for lat in variant.latency
                }
                out += [
                    Observation(metrics.framework, name, cell, metrics.seed, values, latency)
                    for cell in cells
                ]
    return out, problems


def compute(
    sweep: SweepDir, records: dict[str, PointRecord], spec: SweepSpec | None = None
) -> SweepStats:
    obs, problems = observations(sweep, records, spec)
    counts: dict[str, int] = {}
    for record in records.values():
        counts[record.status] = counts.get(record.status, 0) + 1
    return SweepStats(
        confidence=stats.CONFIDENCE,
        summary=_summary(obs),
        latency=_latency(obs),
        differences=_differences(obs),
        problems=problems,
        points=counts,
    )


def _groups(obs: list[Observation]) -> dict[tuple[str, str, str], list[Observation]]:
    groups: dict[tuple[str, str, str], list[Observation]] = {}
    for o in sorted(obs, key=lambda o: (o.cell, o.framework, _variant_order(o.variant), o.seed)):
        groups.setdefault((o.framework, o.variant, o.cell), []).append(o)
    return groups


def _variant_order(name: str) -> int:
    return ("baseline", "ptq", "qat").index(name) if name in ("baseline", "ptq", "qat") else 9


def _summary(obs: list[Observation]) -> list[SummaryRow]:
    rows = []
    for (framework, variant, cell), group in _groups(obs).items():
        for key, _label, unit in METRICS:
            pairs = [(o.seed, o.values[key]) for o in group if o.values.get(key) is not None]
            if not pairs:
                continue
            bounds = stats.PERCENT if unit == "%" else None
            interval = stats.mean_interval([v for _, v in pairs], bounds=bounds)
            rows.append(
                SummaryRow(
                    framework, variant, cell, key, unit, interval.n, interval.mean,
                    interval.sd, interval.low, interval.high, [s for s, _ in pairs],
                    interval.note,
                )
            )  # fmt: skip
    return rows


def _latency(obs: list[Observation]) -> list[LatencyRow]:
    rows = []
    for (framework, variant, cell), group in _groups(obs).items():
        keys = sorted({k for o in group for k in o.latency}, key=lambda k: (-k[1], k[0]))
        for batch, threads in keys:
            runs = [o.latency[(batch, threads)] for o in group if (batch, threads) in o.latency]
            quiet = [r for r in runs if not r.contended]
            excluded = [r.describe() for r in runs if r.contended]
            p50, low, high, basis, note = _latency_figure(quiet)
            hosts = sorted({r.host for r in quiet})
            if len(hosts) > 1:  # the interval's spread then includes the machines'
                note = "; ".join(filter(None, [note, f"runs timed on {len(hosts)} hosts"]))
            rows.append(
                LatencyRow(
                    framework, variant, cell, batch, threads, len(quiet), p50, low, high,
                    basis, excluded, note, hosts,
                )
            )  # fmt: skip
    return _placement(rows)


def _placement(rows: list[LatencyRow]) -> list[LatencyRow]:
    """Flag each row whose cell, batch and thread count the frameworks timed on different
    machines: the sweep never divides them, and a reader should not either."""
    hosts: dict[tuple[str, int, int], dict[str, set[str]]] = {}
    for r in rows:
        by_fw = hosts.setdefault((r.cell, r.batch_size, r.threads), {})
        by_fw.setdefault(r.framework, set()).update(r.hosts)
    out = []
    for r in rows:
        by_fw = hosts[(r.cell, r.batch_size, r.threads)]
        if len(by_fw) > 1 and len({frozenset(h) for h in by_fw.values()}) > 1:
            where = "; ".join(f"{fw} on {', '.join(sorted(h))}" for fw, h in sorted(by_fw.items()))
            r = replace(r, placement=f"frameworks timed on different hosts ({where})")
        out.append(r)
    return out


def _latency_figure(
    runs: list[RunLatency],
) -> tuple[float | None, float | None, float | None, str, str | None]:
    """(p50, low, high, what was resampled, note) over the runs, the run as the unit."""
    if not runs:
        return None, None, None, "no uncontended run", None
    if len(runs) > 1:
        interval = stats.runs_interval([r.p50_ms for r in runs])
        basis = f"t over {interval.n} runs' p50"
        return interval.mean, interval.low, interval.high, basis, interval.note
    # One run says nothing about the next; its own calls say how well it pinned its p50.
    run = runs[0]
    samples = load_samples(run.samples) if run.samples else None
    if samples is None or samples.size < 2:
        return run.p50_ms, None, None, "one run, no samples saved: no interval", None
    low, high = stats.median_interval(samples)  # type: ignore[misc]
    basis = f"within one run (bootstrap of its {samples.size} calls)"
    return run.p50_ms, low, high, basis, None


def _paired(
    a: list[Observation], b: list[Observation], metric: str
) -> tuple[list[int], list[float], list[float]]:
    """Values of both sides for the seeds both have (a seed missing on one side drops out)."""
    left = {o.seed: o.values.get(metric) for o in a}
    right = {o.seed: o.values.get(metric) for o in b}
    seeds = sorted(s for s in left if s in right and left[s] is not None and right[s] is not None)
    return seeds, [left[s] for s in seeds], [right[s] for s in seeds]  # type: ignore[misc]


def _differences(obs: list[Observation]) -> list[DifferenceRow]:
    groups = _groups(obs)
    frameworks = sorted({f for f, _, _ in groups})
    cells = list(dict.fromkeys(c for _, _, c in groups))
    rows = []
    for cell in cells:
        family: list[DifferenceRow] = []
        for framework in frameworks:
            base = groups.get((framework, "baseline", cell), [])
            for variant in ("ptq", "qat"):
                family += _row(
                    f"{variant} - baseline",
                    framework,
                    cell,
                    groups.get((framework, variant, cell), []),
                    base,
                )
        present = [fw for fw in FRAMEWORKS if fw in frameworks]  # the table's order
        for first, second in itertools.combinations(present, 2):
            for variant in VARIANTS:
                a = groups.get((first, variant, cell), [])
                b = groups.get((second, variant, cell), [])
                family += _row(f"{first} - {second}", variant, cell, a, b)
        rows += _holm(family)
    return rows


def _holm(family: list[DifferenceRow]) -> list[DifferenceRow]:
    """One cell's comparisons are one family: several verdicts at 95% each would call
    something distinguishable by chance, so each also gets Holm's adjusted verdict."""
    adjusted = stats.holm([r.p_value for r in family])
    tested = sum(p is not None for p in adjusted)
    return [
        replace(r, p_holm=p, holm_verdict=_holm_verdict(p), holm_family=tested)
        for r, p in zip(family, adjusted, strict=True)
    ]


def _holm_verdict(p_holm: float | None) -> str | None:
    if p_holm is None:
        return None
    return "distinguishable" if p_holm < 1 - stats.CONFIDENCE else "not distinguishable"


def _row(
    comparison: str, within: str, cell: str, a: list[Observation], b: list[Observation]
) -> list[DifferenceRow]:
    seeds, left, right = _paired(a, b, DIFFERENCE_METRIC)
    if not seeds:
        return []
    diff = stats.paired_difference(left, right, bounds=(-100.0, 100.0))
    i = diff.interval
    return [
        DifferenceRow(
            comparison, within, cell, DIFFERENCE_METRIC, i.n, i.mean, i.sd, i.low, i.high,
            diff.verdict, seeds, p_value=diff.p_value, note=i.note,
        )
    ]  # fmt: skip
