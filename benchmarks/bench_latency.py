"""fp32 vs int8 batch-1 latency at full width, through the harness and through a bare loop.

    python benchmarks/bench_latency.py [--framework pytorch|tensorflow|all] [--batch 1]
                                       [--threads N] [--flow pt2e|fx]

For each variant it prints the harness's latency (the runner's own model and
prepared inputs, timed as the study times them: ``measurement.time_forward``) beside
a bare loop timed in the same process: harness/bare near 1.0 shows the method adds
nothing, and the int8/fp32 ratio is the speed-up a user would see. TensorFlow also
gets a bare TFLite fp32 row: Keras fp32 and LiteRT int8 are different runtimes, so
TFLite fp32 -> int8 is the like-for-like speed-up. Untrained weights are fine: latency
does not depend on their values.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from harness_contract.model.weights import initial_weights
from harness_contract.spec import build_spec, effective_threads
from harness_contract.study.measurement import time_forward


def bare_p50_ms(call: Callable[[], object], warmup: int = 20, runs: int = 300) -> float:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(samples)


def _framework(name: str, args: argparse.Namespace) -> tuple[Any, Any, int]:
    # Random weights in every conv: zeroed residual branches would let a runtime that
    # exploits sparsity (XNNPACK) skip work a trained model must do.
    overrides = ["device=cpu", "model.zero_init_residual=false", f"pytorch.quant_flow={args.flow}"]
    if args.threads:
        overrides.append(f"measure.threads={args.threads}")
    spec = build_spec("paper", None, overrides)
    if name == "pytorch":
        from torch_runner.runner import TorchFramework as Framework
    else:
        from tf_runner.runner import TFFramework as Framework
    fw, threads = Framework(), effective_threads(spec)
    fw.setup(spec, threads)
    return fw, spec, threads


def _torch_loops(fw: Any, fp32: Any, int8: Any, images: np.ndarray) -> dict[str, Callable]:
    import torch

    x = fw.normalize(images, torch.device("cpu"))
    fp32.eval()

    def loop(net: Any) -> Callable[[], object]:
        return torch.no_grad()(lambda: net(x))

    return {"fp32": loop(fp32), "int8": loop(int8.runnable)}


def _tf_loops(fw: Any, fp32: Any, int8: Any, images: np.ndarray) -> dict[str, Callable]:
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    x = fw.normalize.numpy(images)
    forward = tf.function(lambda t: fp32(t, training=False))
    tensor = tf.constant(x)

    def invoke(model: bytes, data: np.ndarray) -> Callable[[], object]:
        interp = Interpreter(model_content=model, num_threads=fw.threads)
        interp.resize_tensor_input(0, list(data.shape))
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], data)
        return interp.invoke

    quantized_input = int8.prepared(x).get_tensor(
        int8.interpreter(len(x)).get_input_details()[0]["index"]
    )
    tflite_fp32 = tf.lite.TFLiteConverter.from_keras_model(fp32).convert()
    return {
        "fp32": lambda: forward(tensor).numpy(),
        "tflite_fp32": invoke(tflite_fp32, x),
        "int8": invoke(int8.tflite, quantized_input),
    }


def bench(name: str, args: argparse.Namespace) -> dict[str, float]:
    """Prints the table; returns harness/bare p50 per variant (``fp32``, ``int8``)."""
    fw, spec, threads = _framework(name, args)
    fp32 = fw.build(initial_weights(spec.model, spec.seed))
    rng = np.random.default_rng(0)
    calibration = [rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8) for _ in range(4)]
    int8 = fw.quantize_ptq(fp32, calibration).model
    images = rng.integers(0, 256, (args.batch, 32, 32, 3), dtype=np.uint8)
    loops = (_torch_loops if name == "pytorch" else _tf_loops)(fw, fp32, int8, images)
    harness = {}
    for variant, model in (("fp32", fp32), ("int8", int8)):
        harness[variant] = time_forward(fw, model, images, spec.measure.latency, threads).stats
    bare = {variant: bare_p50_ms(loop) for variant, loop in loops.items()}

    versions = ", ".join(f"{k} {v}" for k, v in fw.versions().items())
    print(f"\n{name} ({versions}); batch {args.batch}, {threads} threads, cpu")
    print(
        f"{'variant':12} {'harness p50 ms':>15} {'p90 ms':>8} {'n':>6} {'bare p50 ms':>12} "
        f"{'harness/bare':>13}"
    )
    for variant, bare_ms in bare.items():
        s = harness.get(variant)
        cells = (
            f"{s.p50_ms:15.3f} {s.p90_ms:8.3f} {s.n:6d}" if s else f"{'-':>15} {'-':>8} {'-':>6}"
        )
        ratio = f"{s.p50_ms / bare_ms:13.3f}" if s else f"{'-':>13}"
        print(f"{variant:12} {cells} {bare_ms:12.3f} {ratio}")
    speedup = harness["fp32"].p50_ms / harness["int8"].p50_ms
    print(f"int8 speed-up over fp32, harness p50: {speedup:.2f}x")
    if "tflite_fp32" in bare:
        print(
            f"int8 speed-up over TFLite fp32 (same runtime, bare p50): "
            f"{bare['tflite_fp32'] / bare['int8']:.2f}x"
        )
    return {v: harness[v].p50_ms / bare[v] for v in ("fp32", "int8")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=("pytorch", "tensorflow", "all"), default="all")
    p.add_argument("--flow", choices=("pt2e", "fx"), default="pt2e", help="PyTorch int8 flow")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch", type=int, default=1)
    args = p.parse_args()
    for name in ("pytorch", "tensorflow") if args.framework == "all" else (args.framework,):
        bench(name, args)


if __name__ == "__main__":
    main()
