"""PyTorch fp32 vs int8 batch-1 latency at full width, through the harness and a bare loop.

    python benchmarks/bench_pytorch_latency.py [--flow pt2e|fx] [--threads N] [--batch 1]

Prints the harness's latency (shared latency helper, the runner's own model and
inputs) beside a bare ``model(x)`` loop timed in the same process, so the ratio
harness/bare shows the method adds nothing, and int8/fp32 shows the speed-up.
Untrained weights are fine here: latency does not depend on their values.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def bare_p50_ms(call, warmup: int = 20, runs: int = 200) -> float:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(samples)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flow", choices=("pt2e", "fx"), default="pt2e")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch", type=int, default=1)
    args = p.parse_args()

    import torch

    from harness_contract.latency import measure_latency
    from harness_contract.spec import build_spec, effective_threads
    from harness_contract.weights import initial_weights
    from torch_runner.runner import TorchFramework

    overrides = ["device=cpu", f"pytorch.quant_flow={args.flow}"]
    if args.threads:
        overrides.append(f"measure.threads={args.threads}")
    spec = build_spec("paper", None, overrides)
    threads = effective_threads(spec)
    fw = TorchFramework()
    fw.setup(spec, threads)
    fp32 = fw.build(initial_weights(spec.model, spec.seed)).eval()
    rng = np.random.default_rng(0)
    calibration = [rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8) for _ in range(4)]
    int8 = fw.quantize_ptq(fp32, calibration).model
    images = rng.integers(0, 256, (args.batch, 32, 32, 3), dtype=np.uint8)

    rows = []
    for name, model, net in (("fp32", fp32, fp32), ("int8", int8, int8.runnable)):
        call, device = fw.latency_call(model, images)
        harness = measure_latency(
            call, spec.measure.latency, batch_size=args.batch, device=device, threads=threads
        ).stats
        x = fw.normalize(images, torch.device("cpu"))
        with torch.no_grad():
            bare = bare_p50_ms(lambda net=net, x=x: net(x))
        rows.append((name, harness.p50_ms, harness.p90_ms, harness.n, bare))

    print(
        f"torch {torch.__version__}, flow {args.flow}, batch {args.batch}, {threads} threads, cpu"
    )
    print(
        f"{'variant':8} {'harness p50 ms':>15} {'p90 ms':>8} {'n':>6} {'bare p50 ms':>12} "
        f"{'harness/bare':>13}"
    )
    for name, p50, p90, n, bare in rows:
        print(f"{name:8} {p50:15.3f} {p90:8.3f} {n:6d} {bare:12.3f} {p50 / bare:13.3f}")
    speedup = rows[0][1] / rows[1][1]
    print(f"int8 speed-up over fp32 (harness p50): {speedup:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
