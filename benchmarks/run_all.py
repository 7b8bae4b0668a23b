"""All three benchmark targets in one run, one summary table at the end.

    python benchmarks/run_all.py [--framework pytorch|tensorflow|all]

Runs bench_latency (batch 1, full width: harness p50 vs a bare loop on the same
model) and bench_training (quarter width: harness training loop vs a bare loop,
and the share of step time spent waiting for input) for each framework, in this
process, then prints each figure against its target. The machine's load is
printed by each benchmark: on a busy machine the ratios are noise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_latency  # noqa: E402
import bench_training  # noqa: E402

LATENCY_TOLERANCE = 0.10  # harness within 10% of the bare loop
MIN_TRAINING_RATIO = 0.97
MAX_INPUT_WAIT_PCT = 5.0


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=("pytorch", "tensorflow", "all"), default="all")
    p.add_argument("--epochs", type=int, default=3, help="measured training epochs")
    args = p.parse_args()
    names = ("pytorch", "tensorflow") if args.framework == "all" else (args.framework,)
    latency_args = argparse.Namespace(flow="pt2e", threads=None, batch=1)
    training_args = argparse.Namespace(width=0.25, images=2048, batch=128, epochs=args.epochs)
    rows = []
    for name in names:
        lat = bench_latency.bench(name, latency_args)
        train = bench_training.bench(name, training_args)
        rows.append((name, lat, train))

    print("\nsummary (targets from issue #5)")
    print(f"{'framework':11} {'figure':44} {'value':>8}  target")
    for name, lat, train in rows:
        for variant in ("fp32", "int8"):
            ratio = lat[variant]
            ok = abs(ratio - 1) <= LATENCY_TOLERANCE
            print(
                f"{name:11} {'latency harness/bare p50, ' + variant + ' batch 1':44} {ratio:8.3f}"
                f"  within {LATENCY_TOLERANCE:.0%}: {_verdict(ok)}"
            )
        ratio = train["throughput_ratio"]
        print(
            f"{name:11} {'training images/s harness/bare':44} {ratio:8.3f}"
            f"  >= {MIN_TRAINING_RATIO}: {_verdict(ratio >= MIN_TRAINING_RATIO)}"
        )
        wait = train["input_wait_pct"]
        print(
            f"{name:11} {'input wait, % of training step time':44} {wait:8.2f}"
            f"  < {MAX_INPUT_WAIT_PCT}%: {_verdict(wait < MAX_INPUT_WAIT_PCT)}"
        )


if __name__ == "__main__":
    main()
