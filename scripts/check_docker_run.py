"""Check a `harness compare --backend docker` run: both frameworks complete, in containers,
as a non-root user, with no network, profiler traces written inside the container, and
the merged report written.

    python scripts/check_docker_run.py RUN_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from harness.rundir import RunDir
from harness_contract.metrics import read_metrics

FRAMEWORKS = ("pytorch", "tensorflow")


def problems(run_dir: Path) -> list[str]:
    found = []
    run = RunDir(run_dir)
    for fw in FRAMEWORKS:
        out = run.framework(fw)
        m = read_metrics(out.metrics)
        p = m.provenance
        if m.outcome != "complete":
            found.append(f"{fw}: {m.outcome} ({m.error or ', '.join(m.failed_phases())})")
        found += [
            f"{fw} {name}: {v.status} ({v.reason})"
            for name, v in m.variants.items()
            if v.status != "ok"
        ]
        if not p.runtime.startswith("docker image"):
            found.append(f"{fw}: ran in '{p.runtime}', not in a container")
        if p.uid in (None, 0):
            found.append(f"{fw}: ran as uid {p.uid}, not as a non-root user")
        if p.network_interfaces != ["lo"]:
            found.append(f"{fw}: saw network interfaces {p.network_interfaces}, not only 'lo'")
        for name, v in m.variants.items():
            for prof in v.profiles:
                where = f"{fw} {name} {prof.kind} profile"
                if prof.status == "failed":
                    found.append(f"{where}: failed ({prof.reason})")
                elif prof.status == "ok" and not (out.path / (prof.trace or "")).exists():
                    found.append(f"{where}: trace {prof.trace} missing")
        if not any(prof.status == "ok" for v in m.variants.values() for prof in v.profiles):
            found.append(f"{fw}: no profiler pass succeeded in the container")
    frame = pd.read_csv(run.results_csv)
    if len(frame) != 3 * len(FRAMEWORKS):
        found.append(f"results.csv has {len(frame)} rows, expected {3 * len(FRAMEWORKS)}")
    if "Model size (Table I)" not in run.report_md.read_text():
        found.append("report.md lacks the size table")
    return found


def main() -> int:
    run_dir = Path(sys.argv[1])
    found = problems(run_dir)
    for line in found:
        print(f"docker run check: {line}")
    if not found:
        print(
            f"docker run check: {run_dir}: both frameworks complete in containers, non-root, "
            "no network, traces written, report written"
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
