"""`harness reproduce` of a real local-backend smoke run of PyTorch (the session's ``e2e``
run, which test_cli_e2e reads too): every model file is bit-identical (the runners are
deterministic on CPU), exit 0, the original untouched."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e_run import E2E_TIMEOUT_S, E2ERun
from tests.test_reproduce import snapshot

pytestmark = pytest.mark.slow


def _harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=E2E_TIMEOUT_S,
    )


def test_a_local_smoke_run_reproduces_bit_for_bit(e2e: E2ERun) -> None:
    original = e2e.run_dir
    metrics = e2e.metrics
    assert all(v.artifacts for v in metrics.variants.values() if v.status == "ok")
    before = snapshot(original)

    proc = _harness("reproduce", str(original))

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    verdict = json.loads((original.parent / "e2e-repro-1" / "reproduction.json").read_text())
    artifacts = [a for fw in verdict["frameworks"] for v in fw["variants"] for a in v["artifacts"]]
    # every model file: each variant's own and each runtime rung's (.pt2, .pte)
    expected = sum(len(v.model_files()) for v in metrics.variants.values())
    assert expected > sum(len(v.artifacts) for v in metrics.variants.values())
    assert len(artifacts) == expected and all(a["identical"] for a in artifacts), artifacts
    assert "bit-identical" in proc.stdout
    assert snapshot(original) == before
