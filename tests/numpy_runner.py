"""A real runner for host tests that need the shared entrypoint and ``Study`` end to end
(not the fake runner's stand-in): tests/numpy_framework.py behind ``entrypoint.main``.

Its model files are written as the real runners write theirs (to a temporary file, then
renamed), padded to $NUMPY_RUNNER_PAD bytes so a test can fill a small disk with them.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from harness_contract.entrypoint import main as runner_main
from harness_contract.entrypoint import parse_args
from harness_contract.fs.atomic import write_bytes_atomic
from harness_contract.metrics.figures import SizeStats
from harness_contract.study.framework import Saved
from tests.numpy_framework import NumpyFramework

MODULE = "tests.numpy_runner"
# The spec a test runs it with: tiny, and without the parts a numpy model has not got.
QUICK = [
    "train.epochs=1",
    "train.batch_size=50",
    "qat.epochs=1",
    "qat.batch_size=50",
    "ptq.calibration_samples=64",
    "measure.latency.batch_sizes=[1]",
    "measure.latency.min_count=5",
    "measure.latency.min_seconds=0",
    "measure.latency.warmup_count=1",
    "measure.latency.warmup_seconds=0",
    "measure.latency.thread_sweep=false",
    "measure.profile.enabled=false",
    "support.enabled=false",
    "analysis.enabled=false",
    "pytorch.runtimes=[]",
    "tensorflow.runtimes=[]",
]


class PaddedNumpyFramework(NumpyFramework):
    def __init__(self, name: str) -> None:
        self.name = name

    def save(self, model: Any, directory: Path, stem: str) -> Saved:
        buffer = io.BytesIO()
        np.savez(buffer, w=model.w, b=model.b)
        data = buffer.getvalue()
        data += b"\0" * max(0, int(os.environ.get("NUMPY_RUNNER_PAD", "0")) - len(data))
        path = directory / f"{stem}.npz"
        write_bytes_atomic(path, data)
        size = SizeStats(bytes=len(data), format="npz", parameters=192 * 10 + 10, file=path.name)
        return Saved(size, (path,))


def use_numpy_runners(monkeypatch) -> None:  # noqa: ANN001 (pytest's MonkeyPatch)
    """Serve every framework with this module (main() called in the test's process)."""
    from dataclasses import replace

    from harness_contract.frameworks import FRAMEWORKS

    for name in list(FRAMEWORKS):
        monkeypatch.setitem(FRAMEWORKS, name, replace(FRAMEWORKS[name], runner_module=MODULE))
    root = str(Path(__file__).resolve().parent.parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))


if __name__ == "__main__":
    name = parse_args(sys.argv[1:], "numpy_runner").out.name  # as the host names the folder
    sys.exit(runner_main(lambda: PaddedNumpyFramework(name), prog="numpy_runner"))
