"""Check a `harness compare --backend docker` run: both frameworks complete and every
runtime rung ran, in containers, as a non-root user, with no network, profiler traces
written inside the container, and the merged report written. With --locked LOCK, each
framework's metrics.json must name its image by the digest reference that lock records
(and the local image id). With --reproduction RESULTS, the `harness reproduce` rerun in
RESULTS must report every artifact of both frameworks bit-identical.

    python scripts/check_docker_run.py RUN_DIR [--locked LOCK]
    python scripts/check_docker_run.py --reproduction RESULTS
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import pandas as pd

from harness.run.rundir import RunDir
from harness_contract.frameworks import FRAMEWORKS
from harness_contract.metrics import read_metrics


def problems(run_dir: Path, locked: Path | None = None) -> list[str]:
    found = []
    lock = tomllib.loads(locked.read_text()) if locked else None
    run = RunDir(run_dir)
    rows = 0
    for fw in FRAMEWORKS:
        out = run.framework(fw)
        m = read_metrics(out.metrics)
        p = m.provenance
        if m.outcome != "complete":  # the failed variants and rungs are listed below
            found.append(f"{fw}: {m.outcome}" + (f" ({m.error})" if m.error else ""))
        found += [
            f"{fw} {name}: {v.status} ({v.reason})"
            for name, v in m.variants.items()
            if v.status != "ok"
        ]
        # The images carry every runtime (g++ and Python.h for Inductor, ExecuTorch): a
        # rung that is merely "unavailable" in a container is a broken image. "skipped" is
        # the spec's choice (smoke's measure.rung_variants leaves QAT's rungs out).
        found += [
            f"{fw} {name} on {r.runtime}: {r.status} ({r.reason})"
            for name, v in m.variants.items()
            for r in v.rungs
            if r.status not in ("ok", "skipped")
        ]
        rows += len(m.variants) + sum(len(v.rungs) for v in m.variants.values())
        if not p.runtime.startswith("docker image"):
            found.append(f"{fw}: ran in '{p.runtime}', not in a container")
        if lock is not None:
            found += _image_problems(fw, p.image, lock[fw].get("published_ref", ""))
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
    if len(frame) != rows:
        found.append(f"results.csv has {len(frame)} rows, expected {rows} (variants and rungs)")
    if "Model size (Table I)" not in run.report_md.read_text():
        found.append("report.md lacks the size table")
    return found


def _image_problems(fw: str, image: object, locked_ref: str) -> list[str]:
    if image is None:
        return [f"{fw}: metrics.json names no image (provenance.image is empty)"]
    digest, image_id = getattr(image, "digest", None), getattr(image, "id", "")
    found = []
    if digest != locked_ref:
        found.append(f"{fw}: ran in {digest}, not the locked {locked_ref or '(none)'}")
    if not image_id.startswith("sha256:"):
        found.append(f"{fw}: image id {image_id!r} is not a local image id")
    return found


def reproduction_problems(results: Path) -> list[str]:
    """Every artifact of both frameworks bit-identical in the rerun's reproduction.json."""
    reports = sorted(results.glob("*/reproduction.json"))
    if len(reports) != 1:
        return [f"expected one reproduction.json under {results}, found {len(reports)}"]
    data = json.loads(reports[0].read_text())
    by_fw = {fw["framework"]: fw for fw in data["frameworks"]}
    found = [f"{fw}: not in {reports[0]}" for fw in FRAMEWORKS if fw not in by_fw]
    for name, fw in by_fw.items():
        artifacts = [a for v in fw["variants"] for a in v["artifacts"]]
        if fw.get("problem") or not artifacts:
            found.append(f"{name}: {fw.get('problem') or 'no artifacts compared'}")
        found += [
            f"{name}: {a['file']} differs ({a['original'][:12]} vs {a['rerun'][:12]})"
            for a in artifacts
            if not a["identical"]
        ]
        if not found:
            print(f"docker run check: {name}: all {len(artifacts)} artifacts bit-identical")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, nargs="?")
    parser.add_argument("--locked", type=Path, help="image lock whose digests the run must name")
    parser.add_argument("--reproduction", type=Path, metavar="RESULTS")
    args = parser.parse_args()
    if args.reproduction:
        found = reproduction_problems(args.reproduction)
        what = f"{args.reproduction}: the reproduction is bit-identical for both frameworks"
    elif args.run_dir:
        found = problems(args.run_dir, args.locked)
        what = (
            f"{args.run_dir}: both frameworks complete in containers, non-root, no network, "
            "traces written, report written"
            + (", images named by their locked digests" if args.locked else "")
        )
    else:
        parser.error("give RUN_DIR or --reproduction RESULTS")
    for line in found:
        print(f"docker run check: {line}")
    if not found:
        print(f"docker run check: {what}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
