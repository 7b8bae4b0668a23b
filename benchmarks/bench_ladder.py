"""The runtime ladder at full width: every deployable runtime of both frameworks, the
harness's latency beside a bare loop of the same runtime and beside an independent
reference built for each batch size in a fresh process.

    python benchmarks/bench_ladder.py [--framework pytorch|tensorflow|all] [--width 1.0]
                                      [--batch-sizes 1 128] [--threads N]
                                      [--min-count 20] [--min-seconds 1.0]
                                      [--rungs SLUG ...] [--rounds 3]
                                      [--quick] [--no-reference]

For each rung (PyTorch eager fp32, Inductor fp32, PT2E int8 on oneDNN, PT2E int8 through
Inductor, ExecuTorch fp32 and int8; Keras fp32, LiteRT fp32 and int8) it prints:

* the harness p50: the runner's own model (``lower`` for a rung, and the model it makes
  for each batch size, ``Lowered.for_batch``, as the study's ladder does) timed by
  ``measurement.time_forward`` (the runner's ``latency_call`` under the shared
  ``latency.measure_latency``), exactly as a study times it;
* the bare p50: the same runtime called directly in a plain ``time.perf_counter`` loop
  (same warm-up and number of calls), and harness/bare (target: within 10%); the two are
  measured harness, bare, bare, harness and each side averages its two p50s;
* the reference p50 at the smallest and the largest batch size: the rung built the way a
  user serving that one batch builds it (static shapes: ``torch.compile(dynamic=False)``
  with freezing, ``torch.export`` at that shape, a TFLite conversion with that input
  shape), in a fresh process with the framework's public APIs only
  (``ladder_reference.py --paired``), timed by the same latency method in turns with
  the harness's own rung built in that same process, in ``--rounds`` rounds (reference,
  harness, harness, reference, then the other way round); the median of the rounds'
  ratios h/ref is the verdict (target: within 10%: the harness's rung is as fast as its
  runtime), their range is printed beside it, and a reference whose windows saw a load
  average above the cores gets no verdict ("loaded"): one busy neighbour moves these
  timings by more than the target. x-proc divides this process's harness p50 by the fresh
  process's reference: shown, not judged (the same model in two processes on this
  shared machine read up to 30% apart, either way);
* every int8 speed-up within one runtime, and per framework "best deployable fp32 vs
  best int8" (labelled: it divides rows of different runtimes on purpose).

``--quick`` checks that it all runs: quarter width, batches 1 and 32, fewer timed calls
(its figures are not the ones to quote; 14 minutes on a busy 2-core machine, with 18
references, each a fresh process that imports its framework and builds its model;
``--no-reference`` leaves them out). Weights are untrained (random, every residual
branch live): latency does not depend on their values. Conversions calibrate on random
images.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_contract.runtimes import label
from harness_contract.spec import ExperimentSpec, LatencySpec, effective_threads
from harness_contract.study.measurement import time_forward

sys.path.insert(0, str(Path(__file__).parent))

from ladder_reference import in_fresh_process, spec_for  # noqa: E402
from ladder_rungs import (  # noqa: E402
    SLUGS,
    Rung,
    RungMaker,
    RungUnavailable,
    set_up_runner,
    timed_images,
)

LATENCY_TOLERANCE = 0.10
QUICK = {"width": 0.25, "batch_sizes": [1, 32], "min_count": 10, "min_seconds": 0.3}


@dataclass
class Row:
    rung: Rung
    batch: int
    harness_ms: float
    bare_ms: float
    n: int
    reference: dict[str, Any] | None = None  # ladder_reference's JSON, or error

    @property
    def ratio(self) -> float:
        return self.harness_ms / self.bare_ms

    @property
    def reference_ratio(self) -> float | None:
        """The harness's rung over the reference, both timed in the reference's process."""
        ref = self.reference or {}
        return ref.get("ratio")

    @property
    def cross_process_ratio(self) -> float | None:
        p50 = (self.reference or {}).get("p50_ms")
        return None if p50 is None else self.harness_ms / p50


def bare_p50_ms(call: Callable[[], object], warmup: int, runs: int) -> float:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def _spec(args: argparse.Namespace) -> ExperimentSpec:
    return spec_for(args, f"measure.latency.batch_sizes={list(args.batch_sizes)}")


# ---------------------------------------------------------------- measuring and printing


def measure(
    fw: Any, rung: Rung, rule: LatencySpec, threads: int, args: argparse.Namespace
) -> list[Row]:
    """The harness's latency and the bare loop's (as many calls), at each batch size, in
    the order harness, bare, bare, harness: a machine still settling after a compile
    (measured: the first p50 after an Inductor compile 1.5x the later ones) slows both
    sides alike instead of only the first. Each side is the mean of its two p50s. Then
    the reference at the end batch sizes, each in a process of its own, one at a time."""
    rows = []
    for batch in args.batch_sizes:
        images = timed_images(batch)
        model = rung.at(batch)
        first = time_forward(fw, model, images, rule, threads).stats
        bare = [bare_p50_ms(rung.bare(model, images), rule.warmup_count, first.n) for _ in range(2)]
        last = time_forward(fw, model, images, rule, threads).stats
        harness = (first.p50_ms + last.p50_ms) / 2
        rows.append(Row(rung, batch, harness, sum(bare) / 2, first.n + last.n))
    print(f"  measured {rung.name}", flush=True)
    if args.reference:
        for row in rows:
            if row.batch in (min(args.batch_sizes), max(args.batch_sizes)):
                row.reference = in_fresh_process(rung.framework, rung.slug, row.batch, args)
        print(f"  referenced {rung.name}", flush=True)
    return rows


def _verdict(ratio: float | None, load: float | None = None) -> str:
    if ratio is None:
        return "-"
    if load is not None and load > (os.cpu_count() or 1):
        return "loaded"  # another process shared the cores while timing: no verdict
    return "ok" if abs(ratio - 1) <= LATENCY_TOLERANCE else "MISSED"


def _reference_cells(row: Row) -> str:
    ref = row.reference
    if ref is None:
        return f"{'-':>10} {'-':>7} {'-':>10} {'-':>7} {'-':>6} {'-':>9}"
    if "error" in ref:
        return f"reference failed: {ref['error']}"
    ours, ratio, cross = ref.get("harness_p50_ms"), row.reference_ratio, row.cross_process_ratio
    paired = "-" if ours is None else f"{ours:.3f}"
    h_ref = "-" if ratio is None else f"{ratio:.3f}"
    spread = "-" if not ref.get("ratios") else f"{min(ref['ratios']):.2f}-{max(ref['ratios']):.2f}"
    return (
        f"{ref['p50_ms']:10.3f} {ref['build_s']:7.1f} {paired:>10} {h_ref:>7} "
        f"{_verdict(ratio, ref.get('max_load_1m')):6} {spread:>9} {cross:6.3f}"
    )


def _compile_cells(rung: Rung, batch: int) -> str:
    general = "-" if rung.compile_s is None else f"{rung.compile_s:.1f}"
    own = rung.per_batch_s.get(batch)
    return f"{general:>9} {'-' if own is None else f'{own:.1f}':>9}"


def print_table(framework: str, rows: list[Row], versions: dict[str, str], threads: int) -> None:
    print(f"\n{framework} ({', '.join(f'{k} {v}' for k, v in versions.items())})")
    print(f"{threads} threads, cpu; load average {os.getloadavg()[0]:.2f}")
    print(
        "compile s: the runner's lowering (Inductor: its largest batch's static compile, "
        "accuracy's); batch s: the static compile it times at this batch; ref: the reference built"
        " for this batch alone in a fresh process (its build s: compile, export or conversion); "
        "h@ref: the harness's rung timed in turns with it in that process, median of its "
        "windows; h/ref: the median of the rounds' ratios (the verdict), rounds: their range; "
        "x-proc: this process's harness p50 / ref (two processes, not judged)"
    )
    head = (
        f"{'batch':>5}  {'runtime':36} {'prec':5} {'rung':28} {'compile s':>9} {'batch s':>9} "
        f"{'harness ms':>10} {'bare ms':>9} {'h/bare':>7}  {'n':>5} {'':6} "
        f"{'ref ms':>10} {'ref s':>7} {'h@ref ms':>10} {'h/ref':>7} {'':6} {'rounds':>9} "
        f"{'x-proc':>6}"
    )
    print(head)
    for r in rows:
        print(
            f"{r.batch:5d}  {label(framework, r.rung.runtime):36} {r.rung.precision:5} "
            f"{r.rung.name:28} {_compile_cells(r.rung, r.batch)} {r.harness_ms:10.3f} "
            f"{r.bare_ms:9.3f} {r.ratio:7.3f}  {r.n:5d} {_verdict(r.ratio):6} "
            f"{_reference_cells(r)}"
        )
    verdicts = [
        (r.reference_ratio, _verdict(r.reference_ratio, (r.reference or {}).get("max_load_1m")))
        for r in rows
        if r.reference_ratio is not None
    ]
    if verdicts:
        ratios = [ratio for ratio, _ in verdicts]
        said = {v: sum(verdict == v for _, verdict in verdicts) for v in ("ok", "MISSED", "loaded")}
        print(
            f"harness/reference (paired, in the reference's process): {said['ok']} of "
            f"{len(verdicts)} within {LATENCY_TOLERANCE:.0%}, {said['MISSED']} missed, "
            f"{said['loaded']} timed under load (no verdict); "
            f"range {min(ratios):.3f}-{max(ratios):.3f}"
        )
    for batch in sorted({r.batch for r in rows}):
        at = [r for r in rows if r.batch == batch]
        print(f"batch {batch}: int8 speed-ups within one runtime (harness p50, fp32 / int8)")
        for runtime in dict.fromkeys(r.rung.runtime for r in at):
            pair = {r.rung.precision: r for r in at if r.rung.runtime == runtime}
            if "fp32" in pair and "int8" in pair:
                speedup = pair["fp32"].harness_ms / pair["int8"].harness_ms
                print(f"  {label(framework, runtime):36} {speedup:6.2f}x")
        fp32 = min((r for r in at if r.rung.precision == "fp32"), key=lambda r: r.harness_ms)
        int8 = min((r for r in at if r.rung.precision == "int8"), key=lambda r: r.harness_ms)
        across = "across runtimes" if fp32.rung.runtime != int8.rung.runtime else "one runtime"
        print(
            f"  best deployable fp32 vs best int8 ({across}): "
            f"{fp32.rung.name} {fp32.harness_ms:.3f} ms / {int8.rung.name} "
            f"{int8.harness_ms:.3f} ms = {fp32.harness_ms / int8.harness_ms:.2f}x"
        )


def bench(framework: str, args: argparse.Namespace) -> list[Row]:
    spec = _spec(args)
    threads = effective_threads(spec)
    fw = set_up_runner(framework, spec, threads)
    maker = RungMaker(framework, fw, spec, spec.measure.latency.batch_sizes)
    rows = []
    for slug in SLUGS[framework]:  # the study's order: each rung measured before the next
        if args.rungs and slug not in args.rungs:
            continue
        try:
            rung = maker.make(slug)
        except RungUnavailable as exc:  # said, never silently dropped
            print(f"{framework} {slug}: unavailable here: {exc.one_line()}")
            continue
        rows += measure(fw, rung, spec.measure.latency, threads, args)
    rows.sort(key=lambda r: r.batch)  # stable: ladder order within each batch size
    print_table(framework, rows, fw.versions(), threads)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=("pytorch", "tensorflow", "all"), default="all")
    p.add_argument("--width", type=float, default=1.0, help="model.width_multiplier")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 128])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--min-count", type=int, default=20, help="timed calls per row, at least")
    p.add_argument("--min-seconds", type=float, default=1.0, help="seconds per row, at least")
    p.add_argument(
        "--rungs",
        nargs="+",
        choices=[s for v in SLUGS.values() for s in v],
        help="only these rungs (default: every rung)",
    )
    p.add_argument("--rounds", type=int, default=3, help="paired rounds per reference")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a check that it runs: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()),
    )
    p.add_argument(
        "--no-reference",
        dest="reference",
        action="store_false",
        help="skip the fresh-process references (harness vs bare loop only)",
    )
    args = p.parse_args()
    args.paired = True  # every reference is timed in turns with the harness's own rung
    if args.quick:
        vars(args).update(QUICK)
    started = time.perf_counter()
    for name in ("pytorch", "tensorflow") if args.framework == "all" else (args.framework,):
        bench(name, args)
    print(f"\nbench_ladder took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
