#!/usr/bin/env python3
"""The GPU check, for a GPU host borrowed for a few minutes: its own PyTorch (not the
pinned one), no TensorFlow, no Docker engine, perhaps no network.

    python3 scripts/gpu-check.py                      # on the GPU host, from the checkout
    python3 scripts/gpu-check.py --download-wheels .whl   # beforehand, where pip has network

It never replaces the host's torch: the few packages missing there (pydantic, torchao...)
are installed from wheels into a folder of their own put on PYTHONPATH beside the
checkout, which is used in place (nothing of the harness is installed). Then it runs the
GPU tier (``pytest -m gpu``) and a smoke-size PyTorch study on CUDA through the real CLI
(``harness run pytorch --backend local --set device=cuda --allow-untested-versions``;
profiler passes with per-kernel traces on), in under ten minutes, and prints a short
summary: train throughput, int8 vs fp32 latency, board energy per image, the profiler's
device-time breakdown. Where PyTorch sees no CUDA GPU it prints "no GPU: skipped" and
exits 0. Exit 1: a step failed (its output is in the work folder); 2: a setup problem.

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Where each package of the checkout is imported from (pyproject's package-dir).
SOURCES = [REPO, REPO / "shared", REPO / "images" / "pytorch", REPO / "images" / "tensorflow"]
# Modules the tier and the study import; pynvml only for energy (absent: "not measured").
NEEDED = ["numpy", "pydantic", "typer", "rich", "pandas", "scipy", "statsmodels", "pytest"]
NEEDED += ["torchao"]
OPTIONAL = ["pynvml"]
# The wheels a lent GPU host lacks (KINDS.md lists what it has); torchao as pinned.
DOWNLOADS = ["torchao==0.18.0", "pydantic>=2.7,<3", "nvidia-ml-py"]
NEVER = re.compile(r"^(torch|triton|nvidia_(?!ml_py))", re.IGNORECASE)  # the host's own
BUDGET_S = 600
TIER_TIMEOUT_S = 300
STUDY_TIMEOUT_S = 420  # the study's own --timeout; the script allows a little more

PROBE = """
import json, sys
out = {"python": sys.executable}
try:
    import torch
except Exception as exc:
    out["error"] = f"PyTorch cannot be imported ({type(exc).__name__}: {exc})"
else:
    out["torch"] = torch.__version__
    out["cuda"] = torch.version.cuda
    out["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
missing = []
for name in sys.argv[1:]:
    try:
        __import__(name)
    except Exception:
        missing.append(name)
out["missing"] = missing
print(json.dumps(out))
"""


def say(line: str = "") -> None:
    print(line, flush=True)


def probe(python: str, env: dict[str, str]) -> dict:
    """What ``python`` holds: torch, its CUDA GPU, and which modules it cannot import."""
    args = [python, "-c", PROBE, *NEEDED, *OPTIONAL]
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{python} did not run ({exc})", "missing": NEEDED}
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"error": f"{python} failed: {done.stderr.strip()[-300:]}", "missing": NEEDED}


def nvidia_smi() -> str:
    """What the driver lists, for the no-GPU line."""
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi is not installed"
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi did not answer ({exc})"
    gpus = [ln for ln in done.stdout.splitlines() if ln.startswith("GPU ")]
    return f"nvidia-smi lists {len(gpus)} GPU(s)" if gpus else "nvidia-smi lists no GPU"


def quant_flow(torch_version: str) -> str:
    """PT2E where the host's torch is the pinned major.minor, else FX, as the GPU tier
    chooses (tests/test_gpu.py: the PT2E lowering targets the pinned torch)."""
    sys.path.insert(0, str(REPO / "shared"))
    from harness_contract.versions import pinned

    tested = pinned("pytorch")["torch"].split(".")[:2]
    return "pt2e" if torch_version.split("+")[0].split(".")[:2] == tested else "fx"


def environment(site: Path) -> dict[str, str]:
    paths = [str(site), *map(str, SOURCES), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def install_wheels(python: str, wheels: Path, site: Path, env: dict[str, str]) -> list[str]:
    """Every wheel in ``wheels`` whose distribution ``python`` lacks, into ``site`` (never
    torch, triton or CUDA runtime wheels: the host's own stay). The names installed."""
    if not wheels.is_dir():
        return []
    listed = [w for w in sorted(wheels.glob("*.whl")) if not NEVER.match(w.name)]
    names = {w: w.name.split("-")[0] for w in listed}
    check = "import importlib.metadata as m, sys\nfor n in sys.argv[1:]:\n"
    check += "    try: m.version(n)\n    except m.PackageNotFoundError: print(n)\n"
    done = subprocess.run(
        [python, "-c", check, *names.values()], capture_output=True, text=True, env=env
    )
    absent = set(done.stdout.split())
    chosen = [w for w in listed if names[w] in absent]
    if chosen:
        cmd = [python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
        cmd += ["--upgrade", "--target", str(site), *map(str, chosen)]
        subprocess.run(cmd, check=True, env=env)
    return [names[w] for w in chosen]


def download_wheels(dest: Path, python_version: str) -> int:
    """The wheels a GPU host without network needs, for its Python, fetched here."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "-d", str(dest)]
    cmd += ["--python-version", python_version, "--implementation", "cp"]
    for n in ("2_28", "2_27", "2_17"):
        cmd += ["--platform", f"manylinux_{n}_x86_64"]
    cmd += ["--platform", "manylinux2014_x86_64", *DOWNLOADS]
    say(f"$ {' '.join(cmd)}")
    code = subprocess.run(cmd).returncode
    for wheel in sorted(dest.glob("*.whl")):
        say(f"  {wheel.name} ({wheel.stat().st_size / 2**20:.1f} MiB)")
    return code


def run_step(name: str, cmd: list[str], env: dict, log: Path, timeout: float) -> tuple[int, str]:
    """Run one step with its output in ``log``; its exit code and last non-empty line."""
    say(f"== {name}: {' '.join(cmd)}")
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        try:
            code = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            code = 124
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    last = lines[-1] if lines else "no output"
    say(f"   {name}: exit {code} after {time.monotonic() - started:.0f} s: {last[:200]}")
    return code, last


def gpu_test_files() -> list[str]:
    """The test files holding GPU tests: collecting every file would import what a GPU
    host lacks (TensorFlow, Docker's SDK, Ray) for nothing."""
    found = [p for p in sorted((REPO / "tests").glob("test_*.py")) if "mark.gpu" in p.read_text()]
    return [str(p.relative_to(REPO)) for p in found]


# ---------------------------------------------------------------- the summary


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def _energy(lat: dict) -> str:
    e = lat.get("energy") or {}
    if e.get("status") == "measured":
        return (
            f"{e['per_image_j'] * 1000:.3f} mJ/image, {e['per_call_j'] * 1000:.2f} mJ/call, "
            f"{_fmt(e.get('mean_power_w'), '.0f')} W mean ({e.get('source')})"
        )
    return f"energy not measured: {e.get('reason') or 'not recorded'}"


def summary_lines(metrics: dict) -> list[str]:
    """The figures the issue asks for, each with its unit, device and threads."""
    p = metrics["provenance"]
    untested = ", ".join(
        f"{u['package']} {u['installed']} (tested {u['tested']})"
        for u in p.get("untested_versions", [])
    )
    out = [
        f"device {p['device']}; CUDA {p.get('cuda')}, cuDNN {p.get('cudnn')}, driver "
        f"{p.get('gpu_driver')}; threads {p['threads']}; versions "
        + ", ".join(f"{k} {v}" for k, v in p["framework_versions"].items())
        + (f"; UNTESTED: {untested}" if untested else ""),
    ]
    variants = metrics.get("variants", {})
    for name in ("baseline", "qat"):
        t = (variants.get(name) or {}).get("training")
        if t:
            out.append(
                f"train {name}: {t['images_per_s']:.0f} images/s on {t['device']} "
                f"({t['epochs']} epoch(s), {t['wall_s']:.1f} s)"
            )
    fp32 = {lat["batch_size"]: lat for lat in (variants.get("baseline") or {}).get("latency", [])}
    for name, v in variants.items():
        if v.get("status") != "ok":
            out.append(f"{name}: {v.get('status')}: {(v.get('reason') or '')[:160]}")
            continue
        own = v["latency"][0]["threads"] if v.get("latency") else None
        for lat in v.get("latency", []):
            if lat["threads"] != own:
                continue
            base = fp32.get(lat["batch_size"])
            ratio = ""
            if name != "baseline" and base is not None:
                if base["device"] == lat["device"]:
                    ratio = f", fp32/int8 {base['p50_ms'] / lat['p50_ms']:.2f}x"
                else:
                    ratio = f", fp32 ran on {base['device']}: not a like-for-like ratio"
            out.append(
                f"latency {name} ({v['precision']}) batch {lat['batch_size']}: p50 "
                f"{lat['p50_ms']:.3f} ms, p90 {lat['p90_ms']:.3f} ms on {lat['device']} "
                f"({lat['threads']} threads, n {lat['n']}){ratio}; {_energy(lat)}"
            )
    for name, v in variants.items():
        for prof in v.get("profiles", []):
            out.append(_profile_line(name, prof))
    return out


def _profile_line(variant: str, prof: dict) -> str:
    head = f"profile {variant} {prof['kind']} ({prof.get('tool')}, {prof['device']})"
    if prof["status"] != "ok":
        return f"{head}: {prof['status']}: {prof.get('reason')}"
    parts = []
    for device in ("gpu", "cpu"):
        rows = [r for r in prof.get("breakdown", []) if r["device"] == device]
        if rows:
            total_ms = (prof.get("total_us") or {}).get(device, 0) / 1000
            top = sorted(rows, key=lambda r: -r["share"])[:4]
            shares = ", ".join(f"{r['category']} {r['share'] * 100:.0f}%" for r in top)
            parts.append(f"{device} {total_ms:.1f} ms: {shares}")
    trace = f"; trace {prof['trace']}" if prof.get("trace") else ""
    return f"{head}: {'; '.join(parts) or 'no ops'}{trace}"


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable, help="the interpreter holding torch")
    ap.add_argument("--wheels", type=Path, default=REPO / ".whl", help="wheels to add")
    ap.add_argument("--work", type=Path, default=Path("/tmp/quant-gpu-check"))
    ap.add_argument("--data", type=Path, default=None, help="CIFAR-10 dir (default synthetic)")
    ap.add_argument("--skip-tier", action="store_true", help="only the smoke study")
    ap.add_argument("--download-wheels", type=Path, metavar="DIR", default=None)
    ap.add_argument("--python-version", default="3.12", help="with --download-wheels")
    args = ap.parse_args(argv)
    if args.download_wheels is not None:
        return download_wheels(args.download_wheels, args.python_version)

    started = time.monotonic()
    site = args.work / "site"
    env = environment(site)
    found = probe(args.python, env)
    if found.get("error") or not found.get("gpu"):
        why = found.get("error") or (
            f"torch {found.get('torch')} at {found.get('python')} sees no CUDA GPU"
        )
        driver = nvidia_smi()
        if "lists no GPU" in driver or "not installed" in driver:
            say(f"gpu-check: no GPU: skipped ({driver}; {why})")
            say("  nothing ran: the GPU tier and the CUDA smoke study need a CUDA GPU")
            return 0
        say(f"error: {driver} but {why}; pass --python with the interpreter whose torch has CUDA")
        return 2
    say(f"gpu-check: {found['gpu']} (torch {found['torch']}, CUDA {found['cuda']})")
    args.work.mkdir(parents=True, exist_ok=True)
    if found["missing"]:
        added = install_wheels(args.python, args.wheels, site, env)
        say(f"   added from {args.wheels}: {', '.join(added) or 'nothing'}")
        found = probe(args.python, env)
    missing = [m for m in found["missing"] if m not in OPTIONAL]
    if missing:
        say(
            f"error: {args.python} cannot import {', '.join(missing)}; fetch wheels where pip "
            f"has network (python3 scripts/gpu-check.py --download-wheels .whl), carry .whl "
            f"here and run again"
        )
        return 2
    if found["missing"]:
        say("   note: no pynvml (nvidia-ml-py): energy is recorded as not measured")

    results = []
    if not args.skip_tier:
        cmd = [args.python, "-m", "pytest", "-m", "gpu", "-q", "-rs", *gpu_test_files()]
        cmd += ["-o", f"cache_dir={args.work / 'pytest-cache'}"]
        code, last = run_step("GPU tier", cmd, env, args.work / "tier.log", TIER_TIMEOUT_S)
        results.append(("GPU tier (pytest -m gpu)", code, last))
    run_id = time.strftime("gpu-smoke-%Y%m%d-%H%M%S")
    cmd = [args.python, "-m", "harness", "run", "pytorch", "--backend", "local"]
    cmd += ["--preset", "smoke", "--set", "device=cuda", "--allow-untested-versions"]
    cmd += ["--set", f"pytorch.quant_flow={quant_flow(found['torch'])}"]
    cmd += ["--results", str(args.work / "results"), "--run-id", run_id]
    cmd += ["--timeout", str(STUDY_TIMEOUT_S)]
    cmd += ["--data", str(args.data)] if args.data else []
    code, last = run_step("smoke study", cmd, env, args.work / "study.log", STUDY_TIMEOUT_S + 60)
    results.append(("smoke study on CUDA", code, last))

    took = time.monotonic() - started
    say(f"\n== summary ({took:.0f} s; budget {BUDGET_S} s)")
    for name, code, last in results:
        say(f"{name}: {'ok' if code == 0 else f'FAILED (exit {code})'}: {last[:160]}")
    metrics = args.work / "results" / run_id / "pytorch" / "metrics.json"
    if metrics.is_file():
        for line in summary_lines(json.loads(metrics.read_text())):
            say(f"  {line}")
        say(f"  report: {metrics.parent.parent / 'report.md'}")
    if took > BUDGET_S:
        say(f"note: took longer than the {BUDGET_S} s budget")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
