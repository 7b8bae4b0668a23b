"""How long the host CLI takes to start, against a bare interpreter in the same run.

    python benchmarks/bench_cli_start.py [--repeats 7]

Times ``python -m harness --help`` and ``python -c pass`` alternately, each in a fresh
process, and prints both medians, the CLI's own cost (the difference) and the target:
``harness --help`` within 3 s on 2 cores. What keeps it there (no framework, NumPy,
pandas, Ray or Docker SDK on the way to --help) is a test:
tests/test_cli_e2e.py::test_help_imports_no_framework_and_no_heavy_library.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

TARGET_S = 3.0


def _seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    cli, bare = [], []
    for _ in range(args.repeats):  # alternated, so a load spike hits both
        cli.append(_seconds([sys.executable, "-m", "harness", "--help"]))
        bare.append(_seconds([sys.executable, "-c", "pass"]))
    cli_s, bare_s = statistics.median(cli), statistics.median(bare)
    print(f"harness --help   median {cli_s:.3f} s  ({args.repeats} runs)")
    print(f"python -c pass   median {bare_s:.3f} s")
    print(f"the CLI's own    {cli_s - bare_s:.3f} s  ({cli_s / bare_s:.1f}x a bare interpreter)")
    verdict = "ok" if cli_s < TARGET_S else "MISSED"
    print(f"target: harness --help under {TARGET_S:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
