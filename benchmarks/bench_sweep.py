"""What the sweep executors cost, measured by running `harness sweep` itself.

    python benchmarks/bench_sweep.py overhead [--preset smoke] [--seeds 3] [--set K=V ...]
    python benchmarks/bench_sweep.py parallel [--preset smoke] [--seeds 2] [--set K=V ...]

overhead: the same points (every framework x seed) with ``--executor local`` (one after
another, all cores each) and with ``--executor ray`` (a Ray instance started for the
sweep on this machine; each point asks for the same cores, so they also run one at a
time). Printed: each sweep's wall time, the sum of its points' own wall times, and Ray's
added cost = (ray wall - ray points) - (local wall - local points) as a share of the
local wall time (target: under 5% at smoke size). Both sweeps' own output is printed.

parallel: ``--parallel 2`` (one thread a point) against sequential points with two
threads each, on the same points: throughput in points per hour and the ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sweep(results: Path, sweep_id: str, common: list[str], extra: list[str]) -> dict:
    """Run one sweep through the CLI; its wall time, points and output."""
    argv = [sys.executable, "-m", "harness", "sweep", *common, *extra]
    argv += ["--results", str(results), "--sweep-id", sweep_id]
    print(f"$ harness sweep {' '.join(argv[4:])}", flush=True)
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - started
    print(proc.stdout + proc.stderr, flush=True)
    index_path = results / sweep_id / "index.json"
    points = json.loads(index_path.read_text())["points"] if index_path.is_file() else []
    return {
        "code": proc.returncode,
        "wall_s": wall,
        "points": len(points),
        "ok": sum(p["status"] == "ok" for p in points),
        "points_s": sum(p["wall_s"] or 0 for p in points),
    }


def _common(args: argparse.Namespace) -> list[str]:
    common = ["--preset", args.preset, "--seeds", str(args.seeds)]
    if args.frameworks:
        common += ["--frameworks", args.frameworks]
    for text in args.set or []:
        common += ["--set", text]
    return common


def overhead(args: argparse.Namespace, results: Path) -> None:
    common = _common(args)
    local = sweep(results, "bench-local", common, ["--executor", "local"])
    ray = sweep(results, "bench-ray", common, ["--executor", "ray"])
    for name, r in (("local sequential", local), ("ray", ray)):
        print(
            f"{name:>17}: exit {r['code']}, {r['ok']}/{r['points']} points ok, "
            f"wall {r['wall_s']:.1f} s, points' own time {r['points_s']:.1f} s, "
            f"around the points {r['wall_s'] - r['points_s']:.1f} s"
        )
    added = (ray["wall_s"] - ray["points_s"]) - (local["wall_s"] - local["points_s"])
    print(
        f"Ray's scheduling and result shipping: {added:+.1f} s = "
        f"{added / local['wall_s']:+.1%} of the local sequential wall time "
        f"(total wall ratio ray/local {ray['wall_s'] / local['wall_s']:.3f})"
    )


def parallel(args: argparse.Namespace, results: Path) -> None:
    common = _common(args)
    seq = sweep(results, "bench-seq", common, ["--threads", "2"])
    par = sweep(results, "bench-par", common, ["--parallel", "2"])
    rates = {}
    for name, r in (("sequential x 2 threads", seq), ("--parallel 2 x 1 thread", par)):
        rates[name] = r["ok"] / r["wall_s"] * 3600
        print(
            f"{name:>24}: exit {r['code']}, {r['ok']}/{r['points']} points ok in "
            f"{r['wall_s']:.1f} s = {rates[name]:.1f} points/hour"
        )
    ratio = rates["--parallel 2 x 1 thread"] / rates["sequential x 2 threads"]
    print(f"throughput ratio parallel/sequential: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("mode", choices=("overhead", "parallel"))
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--frameworks", default=None)
    parser.add_argument("--set", action="append", help="spec override on every point")
    parser.add_argument("--results", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    results = args.results or Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    print(f"sweeps in {results}", flush=True)
    (overhead if args.mode == "overhead" else parallel)(args, results)


if __name__ == "__main__":
    main()
