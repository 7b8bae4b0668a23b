"""The runtime ladder at full width: every deployable runtime of both frameworks, the
harness's latency beside a bare loop of the same runtime and beside an independent
reference built for each batch size in a fresh process.

    python benchmarks/bench_ladder.py [--framework pytorch|tensorflow|all] [--width 1.0]
                                      [--batch-sizes 1 128] [--threads N]
                                      [--min-count 20] [--min-seconds 1.0]
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
  (``ladder_reference.py``), timed by the same latency method; and harness/reference
  (target: within 10%: the harness's rung is as fast as its runtime);
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
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness_contract.framework import Lowered, RungInputs, RungUnavailable
from harness_contract.ladder import per_batch_models
from harness_contract.measurement import time_forward
from harness_contract.runtimes import label
from harness_contract.spec import ExperimentSpec, LatencySpec, effective_threads
from harness_contract.weights import initial_weights

sys.path.insert(0, str(Path(__file__).parent))

from ladder_reference import (  # noqa: E402
    CALIBRATION_BATCH,
    calibration_images,
    in_fresh_process,
    spec_for,
    timed_images,
)

LATENCY_TOLERANCE = 0.10
QUICK = {"width": 0.25, "batch_sizes": [1, 32], "min_count": 10, "min_seconds": 0.3}
Bare = Callable[[Any, np.ndarray], Callable[[], object]]  # model, images -> the plain call


@dataclass
class Rung:
    framework: str
    runtime: str  # a slug of harness_contract.runtimes: the family speed-ups stay within
    precision: str
    name: str
    reference: str  # its ladder_reference.py rung
    model: Any  # what the runner measures
    bare: Bare  # the same runtime, called directly
    compile_s: float | None = None
    # The model the runner makes for one batch size (Lowered.for_batch) and its seconds.
    per_batch: dict[int, Any] = field(default_factory=dict)
    per_batch_s: dict[int, float] = field(default_factory=dict)

    def at(self, batch: int) -> Any:
        """What the study times at this batch size."""
        return self.per_batch.get(batch, self.model)


@dataclass
class Row:
    rung: Rung
    batch: int
    harness_ms: float
    bare_ms: float
    n: int
    reference: dict[str, Any] | None = None  # p50_ms and build_s, or error

    @property
    def ratio(self) -> float:
        return self.harness_ms / self.bare_ms

    @property
    def reference_ratio(self) -> float | None:
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


def _inputs(variant: str, model: Any, fp32: Any, calibration: list, spec: Any) -> RungInputs:
    return RungInputs(
        variant=variant,
        model=model,
        fp32=fp32,
        calibration=calibration if variant == "ptq" else [],
        fine_tune=lambda m: (m, None),
        # Calibration batches (32 images) pass through the exported program too.
        max_batch=max([*spec.measure.latency.batch_sizes, CALIBRATION_BATCH]),
    )


def _rung(fw: Any, inputs: RungInputs, batches: list[int], bare: Bare, **labels: str) -> Rung:
    """The runner's lowering, and the model it makes for each batch size, as the study's
    ladder does (harness_contract.ladder.per_batch_models)."""
    lowered: Lowered = fw.lower(labels["runtime"], inputs)
    models, seconds = per_batch_models(lowered, batches)
    return Rung(
        model=lowered.model,
        bare=bare,
        compile_s=lowered.compile_s,
        per_batch=models,
        per_batch_s=seconds,
        **labels,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------- TensorFlow


def tensorflow_rungs(spec: ExperimentSpec, threads: int) -> tuple[Any, Iterator[Rung]]:
    import tensorflow as tf

    import tf_runner  # noqa: F401 - TF_USE_LEGACY_KERAS before TensorFlow loads
    from tf_runner.runner import TFFramework

    fw = TFFramework()
    fw.setup(spec, threads)

    def keras_bare(model: Any, images: np.ndarray) -> Callable[[], object]:
        forward = tf.function(lambda t: model(t, training=False))
        x = tf.constant(fw.normalize.numpy(images))
        return lambda: forward(x).numpy()

    def litert_bare(model: Any, images: np.ndarray) -> Callable[[], object]:
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_content=model.tflite, num_threads=threads)
        detail = interp.get_input_details()[0]
        interp.resize_tensor_input(detail["index"], [len(images), 32, 32, 3])
        interp.allocate_tensors()
        x = fw.normalize.numpy(images)
        if detail["dtype"] == np.int8:
            scale, zero = detail["quantization"]
            x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
        interp.set_tensor(detail["index"], x)
        return interp.invoke

    def rungs() -> Iterator[Rung]:
        keras = fw.build(initial_weights(spec.model, spec.seed))
        calibration = calibration_images()
        yield Rung("tensorflow", "keras", "fp32", "Keras fp32", "keras-fp32", keras, keras_bare)
        inputs = _inputs("baseline", keras, keras, calibration, spec)
        batches = spec.measure.latency.batch_sizes
        labels = {"framework": "tensorflow", "runtime": "litert", "precision": "fp32"}
        yield _rung(
            fw, inputs, batches, litert_bare, **labels, name="LiteRT fp32", reference="litert-fp32"
        )
        int8 = fw.quantize_ptq(keras, calibration).model
        yield Rung(
            "tensorflow", "litert", "int8", "LiteRT int8 (PTQ)", "litert-int8", int8, litert_bare
        )

    return fw, rungs()


# ---------------------------------------------------------------- PyTorch


def pytorch_rungs(spec: ExperimentSpec, threads: int) -> tuple[Any, Iterator[Rung]]:
    import torch

    from torch_runner.runner import TorchFramework

    fw = TorchFramework()
    fw.setup(spec, threads)

    def module_bare(module: Any, images: np.ndarray) -> Callable[[], object]:
        x = fw.normalize(images, torch.device("cpu"))
        net = module.runnable if hasattr(module, "runnable") else module  # an Int8Model
        return torch.no_grad()(lambda: net(x))

    def lowered(inputs: RungInputs, precision: str, names: dict[str, str]) -> Iterator[Rung]:
        batches = spec.measure.latency.batch_sizes
        for runtime, name in names.items():
            bare = _executorch_bare(fw) if runtime == "executorch" else _inductor_bare(fw)
            labels = {"framework": "pytorch", "runtime": runtime, "precision": precision}
            reference = f"{runtime}-{precision}"
            try:
                rung = _rung(fw, inputs, batches, bare, **labels, name=name, reference=reference)
            except RungUnavailable as exc:  # said, never silently dropped
                print(f"pytorch {name}: unavailable here: {exc.one_line()}")
                continue
            yield rung

    def rungs() -> Iterator[Rung]:
        # The study's order: each rung measured before the next is made (a torch.compile'd
        # model refuses to run after a later torch.export in its process: see the report).
        eager = fw.build(initial_weights(spec.model, spec.seed)).eval()
        calibration = calibration_images()
        yield Rung("pytorch", "eager", "fp32", "eager fp32", "eager-fp32", eager, module_bare)
        base = _inputs("baseline", eager, eager, calibration, spec)
        yield from lowered(
            base, "fp32", {"inductor": "Inductor fp32", "executorch": "ExecuTorch fp32"}
        )
        int8 = fw.quantize_ptq(eager, calibration).model
        yield Rung(
            "pytorch", "eager", "int8", "PT2E int8 on oneDNN", "onednn-int8", int8, module_bare
        )
        ptq = _inputs("ptq", int8, eager, calibration, spec)
        names = {"inductor": "PT2E int8 through Inductor", "executorch": "ExecuTorch int8"}
        yield from lowered(ptq, "int8", names)

    return fw, rungs()


def _inductor_bare(fw: Any) -> Bare:
    """The torch.compile'd module the runner made, called directly: no recompile stance;
    a general compile's input has its batch dimension marked unbacked (as it was compiled),
    a static one's is left as it is."""
    import torch

    def make(model: Any, images: np.ndarray) -> Callable[[], object]:
        x = fw.normalize(images, torch.device("cpu"))
        if model.batch is None:
            torch._dynamo.decorators.mark_unbacked(x, 0)
        return torch.no_grad()(lambda: model.compiled(x))

    return make


def _executorch_bare(fw: Any) -> Bare:
    """The .pte the runner saves, loaded by the ExecuTorch runtime and executed directly."""
    import torch
    from executorch.runtime import Runtime

    methods: dict[int, Any] = {}

    def make(model: Any, images: np.ndarray) -> Callable[[], object]:
        if id(model) not in methods:
            directory = Path(tempfile.mkdtemp(prefix="bench-ladder-"))
            saved = fw.save(model, directory, "bare")
            pte = next(p for p in saved.files if p.suffix == ".pte")
            methods[id(model)] = Runtime.get().load_program(pte).load_method("forward")
        method = methods[id(model)]
        x = fw.normalize(images, torch.device("cpu")).contiguous()
        return lambda: method.execute([x])

    return make


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
                row.reference = in_fresh_process(rung.framework, rung.reference, row.batch, args)
        print(f"  referenced {rung.name}", flush=True)
    return rows


def _verdict(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return "ok" if abs(ratio - 1) <= LATENCY_TOLERANCE else "MISSED"


def _reference_cells(row: Row) -> str:
    ref = row.reference
    if ref is None:
        return f"{'-':>10} {'-':>7} {'-':>9}"
    if "error" in ref:
        return f"reference failed: {ref['error']}"
    ratio = row.reference_ratio
    return f"{ref['p50_ms']:10.3f} {ref['build_s']:7.1f} {ratio:9.3f} {_verdict(ratio)}"


def _compile_cells(rung: Rung, batch: int) -> str:
    general = "-" if rung.compile_s is None else f"{rung.compile_s:.1f}"
    own = rung.per_batch_s.get(batch)
    return f"{general:>9} {'-' if own is None else f'{own:.1f}':>9}"


def print_table(framework: str, rows: list[Row], versions: dict[str, str], threads: int) -> None:
    print(f"\n{framework} ({', '.join(f'{k} {v}' for k, v in versions.items())})")
    print(f"{threads} threads, cpu; load average {os.getloadavg()[0]:.2f}")
    print(
        "compile s: the runner's lowering (Inductor: its general compile, accuracy's); "
        "batch s: the static compile it times at this batch; ref: the reference built for "
        "this batch alone in a fresh process (its build s: compile, export or conversion)"
    )
    head = (
        f"{'batch':>5}  {'runtime':36} {'prec':5} {'rung':28} {'compile s':>9} {'batch s':>9} "
        f"{'harness ms':>10} {'bare ms':>9} {'h/bare':>7}  {'n':>5} {'':6} "
        f"{'ref ms':>10} {'ref s':>7} {'h/ref':>9}"
    )
    print(head)
    for r in rows:
        print(
            f"{r.batch:5d}  {label(framework, r.rung.runtime):36} {r.rung.precision:5} "
            f"{r.rung.name:28} {_compile_cells(r.rung, r.batch)} {r.harness_ms:10.3f} "
            f"{r.bare_ms:9.3f} {r.ratio:7.3f}  {r.n:5d} {_verdict(r.ratio):6} "
            f"{_reference_cells(r)}"
        )
    referenced = [r.reference_ratio for r in rows if r.reference_ratio is not None]
    if referenced:
        missed = sum(abs(x - 1) > LATENCY_TOLERANCE for x in referenced)
        print(
            f"harness/reference: {len(referenced) - missed} of {len(referenced)} within "
            f"{LATENCY_TOLERANCE:.0%} (range {min(referenced):.3f}-{max(referenced):.3f})"
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
    make = pytorch_rungs if framework == "pytorch" else tensorflow_rungs
    fw, rungs = make(spec, threads)
    rows = [row for rung in rungs for row in measure(fw, rung, spec.measure.latency, threads, args)]
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
    if args.quick:
        vars(args).update(QUICK)
    started = time.perf_counter()
    for name in ("pytorch", "tensorflow") if args.framework == "all" else (args.framework,):
        bench(name, args)
    print(f"\nbench_ladder took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
