"""The per-layer analysis of one framework beside its PTQ phase, on CPU.

    python benchmarks/bench_layers.py [--framework pytorch|tensorflow] [--width 1.0]
                                      [--images 256] [--keep-float 1] [--data DIR]
                                      [--ranking weight|sensitivity]

Full width (the paper's ResNet18) from the shared initial weights, untrained (timing
does not depend on training), 512 calibration images as the paper preset takes. Prints
the PTQ phase's time (calibration + conversion), the per-layer analysis of that PTQ
model on the first N test images (fp32 and int8 outputs of every layer, SQNR/MSE, own
error and its weight/output split), the sensitivity ranking's one requantization per layer
(--ranking sensitivity), and each what-if conversion with its measurement (k = 0, the
int8 model, timed between them), apart. Target (issue 12): the
per-layer analysis under 60 s on a 2-core CPU. With --data, a real CIFAR-10 folder (the
figures are then real images'; without it, random ones).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from harness_contract.data.cifar import Cifar10, load_cifar10
from harness_contract.layers.analysis import Analysis, RequantizeInputs
from harness_contract.model.weights import initial_weights
from harness_contract.spec import build_spec, effective_threads
from harness_contract.spec.analysis import AnalysisSpec
from harness_contract.study.phases import calibration_batches

TARGET_S = 60.0


def _random_data(n_test: int) -> Cifar10:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (max(n_test, 1024), 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, len(images)).astype(np.int64)
    return Cifar10(
        images,
        labels,
        images[:n_test],
        labels[:n_test],
        tuple("0123456789"),
        Path("."),
        "synthetic",
        "random",
    )


def _framework(name: str):
    if name == "pytorch":
        from torch_runner.layers import TorchLayerProbe as Probe
        from torch_runner.runner import TorchFramework as Framework
    else:
        from tf_runner.layers import TFLayerProbe as Probe
        from tf_runner.runner import TFFramework as Framework
    return Framework(), Probe


def run(args: argparse.Namespace) -> dict[str, float]:
    spec = build_spec("paper", None, ["device=cpu", f"model.width_multiplier={args.width}"])
    threads = effective_threads(spec)
    fw, Probe = _framework(args.framework)
    fw.setup(spec, threads)
    data = load_cifar10(Path(args.data)) if args.data else _random_data(args.images)
    fp32 = fw.build(initial_weights(spec.model, spec.seed))
    calibration = calibration_batches(data.train_images, spec.ptq, spec.seed)
    t0 = time.perf_counter()
    int8 = fw.quantize_ptq(fp32, calibration).model
    ptq_s = time.perf_counter() - t0
    keep = [int(k) for k in args.keep_float.split(",") if k]
    analysis = Analysis(
        fw,
        Probe(fw),
        spec,
        AnalysisSpec(images=args.images, keep_float=keep, ranking=args.ranking),
        data,
        threads,
    )
    result = analysis.analyse("ptq", int8, fp32, RequantizeInputs(calibration, lambda m: (m, None)))
    layers_s, what_if_s = result.seconds or 0.0, result.what_if_seconds or 0.0
    print(f"{args.framework}: width {args.width}, {threads} threads, load {os.getloadavg()[0]:.2f}")
    print(f"  status {result.status} {result.reason or ''}")
    print(f"  method: {result.method}; own: {result.own_method}")
    print(
        f"  PTQ phase (calibrate {sum(len(b) for b in calibration)} images + convert): "
        f"{ptq_s:6.1f} s"
    )
    print(f"  per-layer analysis, {result.images} images: {layers_s:6.1f} s")
    if result.sensitivity_seconds is not None:
        print(f"  sensitivity (one requantization per layer): {result.sensitivity_seconds:6.1f} s")
    print(f"  what-if (convert again + accuracy + size + b1 latency): {what_if_s:6.1f} s")
    for w in result.what_if:
        print(
            f"    what-if k={w.k} {w.float_layers}: convert {w.seconds or 0:.1f} s, "
            f"agreement {w.agreement_with_fp32}, size {w.size_bytes}, "
            f"b1 p50 {w.latency_b1_p50_ms} ms ({w.status} {w.reason or ''})"
        )
    print(f"  ranking ({result.ranked_by}): {result.ranking}")

    def db(v: float | None) -> str:
        return "     -" if v is None else f"{v:6.1f}"

    for x in result.layers:
        print(
            f"    {x.layer:22s} sqnr {db(x.sqnr_db)}  own {db(x.own_sqnr_db)}  "
            f"weight {db(x.weight_sqnr_db)}  output {db(x.output_sqnr_db)}  "
            f"sensitivity {db(x.sensitivity_sqnr_db)}"
        )
    return {
        "ptq_s": ptq_s,
        "analysis_s": layers_s,
        "sensitivity_s": result.sensitivity_seconds or 0.0,
        "what_if_s": what_if_s,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=("pytorch", "tensorflow"), default="pytorch")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--keep-float", default="", help="comma-separated k values ('' = none)")
    p.add_argument("--data", default=None, help="a CIFAR-10 folder (default: random images)")
    p.add_argument("--ranking", choices=("weight", "sensitivity"), default="weight")
    args = p.parse_args()
    figures = run(args)
    ok = figures["analysis_s"] < TARGET_S
    print(
        f"per-layer analysis {figures['analysis_s']:.1f} s "
        f"(target < {TARGET_S:.0f} s: {'ok' if ok else 'MISSED'}) beside PTQ "
        f"{figures['ptq_s']:.1f} s"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
