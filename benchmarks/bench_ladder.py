"""The runtime ladder at full width: every deployable runtime of both frameworks, the
harness's latency beside a bare loop of the same runtime, in one process.

    python benchmarks/bench_ladder.py [--framework pytorch|tensorflow|all] [--width 1.0]
                                      [--batch-sizes 1 128] [--threads N]
                                      [--min-count 20] [--min-seconds 1.0]

For each rung (PyTorch eager fp32, Inductor fp32, PT2E int8 on oneDNN, PT2E int8 through
Inductor, ExecuTorch fp32 and int8; Keras fp32, LiteRT fp32 and int8) it prints:

* the harness p50: the runner's own model (``lower`` for a rung) timed by
  ``measurement.time_forward`` (the runner's ``latency_call`` under the shared
  ``latency.measure_latency``), exactly as a study times it;
* the bare p50: the same runtime called directly in a plain ``time.perf_counter`` loop
  (same warm-up and number of calls), and harness/bare (target: within 10%); the two are
  measured harness, bare, bare, harness and each side averages its two p50s;
* every int8 speed-up within one runtime, and per framework "best deployable fp32 vs
  best int8" (labelled: it divides rows of different runtimes on purpose).

Weights are untrained (random, every residual branch live): latency does not depend on
their values. Conversions calibrate on random images.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness_contract.framework import RungInputs, RungUnavailable
from harness_contract.measurement import time_forward
from harness_contract.runtimes import label
from harness_contract.spec import ExperimentSpec, LatencySpec, build_spec, effective_threads
from harness_contract.weights import initial_weights

LATENCY_TOLERANCE = 0.10
CALIBRATION_BATCH = 32
Bare = Callable[[np.ndarray], Callable[[], object]]  # images -> the plain call on them


@dataclass
class Rung:
    framework: str
    runtime: str  # a slug of harness_contract.runtimes: the family speed-ups stay within
    precision: str
    name: str
    model: Any  # what the runner measures
    bare: Bare  # the same runtime, called directly
    compile_s: float | None = None


@dataclass
class Row:
    rung: Rung
    batch: int
    harness_ms: float
    bare_ms: float
    n: int

    @property
    def ratio(self) -> float:
        return self.harness_ms / self.bare_ms


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
    # Random weights in every conv: zeroed residual branches would let a runtime that
    # exploits sparsity skip work a trained model must do.
    overrides = [
        "device=cpu",
        "model.zero_init_residual=false",
        f"model.width_multiplier={args.width}",
        f"measure.latency.batch_sizes={list(args.batch_sizes)}",
        "measure.latency.warmup_count=5",
        "measure.latency.warmup_seconds=0.5",
        f"measure.latency.min_count={args.min_count}",
        f"measure.latency.min_seconds={args.min_seconds}",
        f"measure.latency.max_seconds={max(30.0, args.min_seconds)}",
    ]
    if args.threads:
        overrides.append(f"measure.threads={args.threads}")
    return build_spec("paper", None, overrides)


def _calibration(spec: ExperimentSpec) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    shape = (CALIBRATION_BATCH, 32, 32, 3)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(4)]


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


def _lower(fw: Any, runtime: str, inputs: RungInputs) -> tuple[Any, float | None]:
    lowered = fw.lower(runtime, inputs)
    return lowered.model, lowered.compile_s


# ---------------------------------------------------------------- TensorFlow


def tensorflow_rungs(spec: ExperimentSpec, threads: int) -> tuple[Any, Iterator[Rung]]:
    import tensorflow as tf

    import tf_runner  # noqa: F401 - TF_USE_LEGACY_KERAS before TensorFlow loads
    from tf_runner.runner import TFFramework

    fw = TFFramework()
    fw.setup(spec, threads)

    def keras_bare(model: Any) -> Bare:
        def make(images: np.ndarray) -> Callable[[], object]:
            forward = tf.function(lambda t: model(t, training=False))
            x = tf.constant(fw.normalize.numpy(images))
            return lambda: forward(x).numpy()

        return make

    def litert_bare(model: Any) -> Bare:
        from ai_edge_litert.interpreter import Interpreter

        def make(images: np.ndarray) -> Callable[[], object]:
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

        return make

    def rungs() -> Iterator[Rung]:
        keras = fw.build(initial_weights(spec.model, spec.seed))
        calibration = _calibration(spec)
        yield Rung("tensorflow", "keras", "fp32", "Keras fp32", keras, keras_bare(keras))
        inputs = _inputs("baseline", keras, keras, calibration, spec)
        litert, compile_s = _lower(fw, "litert", inputs)
        yield Rung(
            "tensorflow", "litert", "fp32", "LiteRT fp32", litert, litert_bare(litert), compile_s
        )
        int8 = fw.quantize_ptq(keras, calibration).model
        yield Rung("tensorflow", "litert", "int8", "LiteRT int8 (PTQ)", int8, litert_bare(int8))

    return fw, rungs()


# ---------------------------------------------------------------- PyTorch


def pytorch_rungs(spec: ExperimentSpec, threads: int) -> tuple[Any, Iterator[Rung]]:
    import torch

    from torch_runner.runner import TorchFramework

    fw = TorchFramework()
    fw.setup(spec, threads)

    def module_bare(module: Callable[[torch.Tensor], Any]) -> Bare:
        def make(images: np.ndarray) -> Callable[[], object]:
            x = fw.normalize(images, torch.device("cpu"))
            return torch.no_grad()(lambda: module(x))

        return make

    def lowered(inputs: RungInputs, precision: str, names: dict[str, str]) -> Iterator[Rung]:
        for runtime, name in names.items():
            try:
                model, compile_s = _lower(fw, runtime, inputs)
            except RungUnavailable as exc:  # said, never silently dropped
                print(f"pytorch {name}: unavailable here: {exc.one_line()}")
                continue
            bare = (_executorch_bare if runtime == "executorch" else _inductor_bare)(fw, model)
            yield Rung("pytorch", runtime, precision, name, model, bare, compile_s)

    def rungs() -> Iterator[Rung]:
        # The study's order: each rung measured before the next is made (a torch.compile'd
        # model refuses to run after a later torch.export in its process: see the report).
        eager = fw.build(initial_weights(spec.model, spec.seed)).eval()
        calibration = _calibration(spec)
        yield Rung("pytorch", "eager", "fp32", "eager fp32", eager, module_bare(eager))
        base = _inputs("baseline", eager, eager, calibration, spec)
        yield from lowered(
            base, "fp32", {"inductor": "Inductor fp32", "executorch": "ExecuTorch fp32"}
        )
        int8 = fw.quantize_ptq(eager, calibration).model
        yield Rung(
            "pytorch", "eager", "int8", "PT2E int8 on oneDNN", int8, module_bare(int8.runnable)
        )
        ptq = _inputs("ptq", int8, eager, calibration, spec)
        names = {"inductor": "PT2E int8 through Inductor", "executorch": "ExecuTorch int8"}
        yield from lowered(ptq, "int8", names)

    return fw, rungs()


def _inductor_bare(fw: Any, model: Any) -> Bare:
    """The torch.compile'd module the runner made, called directly: no recompile stance,
    the input's batch dimension marked unbacked once (as the compile saw it)."""
    import torch

    def make(images: np.ndarray) -> Callable[[], object]:
        x = fw.normalize(images, torch.device("cpu"))
        torch._dynamo.decorators.mark_unbacked(x, 0)
        return torch.no_grad()(lambda: model.compiled(x))

    return make


def _executorch_bare(fw: Any, model: Any) -> Bare:
    """The .pte the runner saves, loaded by the ExecuTorch runtime and executed directly."""
    import torch
    from executorch.runtime import Runtime

    directory = Path(tempfile.mkdtemp(prefix="bench-ladder-"))
    saved = fw.save(model, directory, "bare")
    pte = next(p for p in saved.files if p.suffix == ".pte")
    method = Runtime.get().load_program(pte).load_method("forward")

    def make(images: np.ndarray) -> Callable[[], object]:
        x = fw.normalize(images, torch.device("cpu")).contiguous()
        return lambda: method.execute([x])

    return make


# ---------------------------------------------------------------- measuring and printing


def measure(fw: Any, rung: Rung, rule: LatencySpec, threads: int, batches: list[int]) -> list[Row]:
    """The harness's latency and the bare loop's (as many calls), at each batch size, in
    the order harness, bare, bare, harness: a machine still settling after a compile
    (measured: the first p50 after an Inductor compile 1.5x the later ones) slows both
    sides alike instead of only the first. Each side is the mean of its two p50s."""
    rows = []
    for batch in batches:
        rng = np.random.default_rng(batch)
        images = rng.integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)
        first = time_forward(fw, rung.model, images, rule, threads).stats
        bare = [bare_p50_ms(rung.bare(images), rule.warmup_count, first.n) for _ in range(2)]
        last = time_forward(fw, rung.model, images, rule, threads).stats
        harness = (first.p50_ms + last.p50_ms) / 2
        rows.append(Row(rung, batch, harness, sum(bare) / 2, first.n + last.n))
    print(f"  measured {rung.name}", flush=True)
    return rows


def print_table(framework: str, rows: list[Row], versions: dict[str, str], threads: int) -> None:
    print(f"\n{framework} ({', '.join(f'{k} {v}' for k, v in versions.items())})")
    print(f"{threads} threads, cpu; load average {os.getloadavg()[0]:.2f}")
    head = (
        f"{'batch':>5}  {'runtime':36} {'prec':5} {'rung':34} {'compile s':>9} "
        f"{'harness p50 ms':>14} {'bare p50 ms':>11} {'harness/bare':>12}  {'n':>5}"
    )
    print(head)
    for r in rows:
        compile_s = "-" if r.rung.compile_s is None else f"{r.rung.compile_s:.1f}"
        ok = "ok" if abs(r.ratio - 1) <= LATENCY_TOLERANCE else "MISSED"
        print(
            f"{r.batch:5d}  {label(framework, r.rung.runtime):36} {r.rung.precision:5} "
            f"{r.rung.name:34} {compile_s:>9} {r.harness_ms:14.3f} {r.bare_ms:11.3f} "
            f"{r.ratio:12.3f}  {r.n:5d} {ok}"
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
    rows = [
        row
        for rung in rungs
        for row in measure(fw, rung, spec.measure.latency, threads, args.batch_sizes)
    ]
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
    args = p.parse_args()
    for name in ("pytorch", "tensorflow") if args.framework == "all" else (args.framework,):
        bench(name, args)


if __name__ == "__main__":
    main()
