"""The study, phase by phase, identical for every framework.

baseline (train fp32, evaluate, size, latency) -> PTQ (calibrate, convert,
evaluate) -> QAT (fine-tune fake-quantized from the baseline, convert,
evaluate). ``Study`` is the entry point runners call; the work is done by small
units, each usable on its own:

* study.StudyDriver: phase order, failures and skips, metrics.json after every phase
* phases: the three phase bodies; training: the epoch loop; measurement: accuracy,
  size and latency; profiling: the profiler passes; provenance: the metrics header;
  memory.PhaseMemory: a phase's training and inference peaks; failures: root causes
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness_contract.data.cifar import Cifar10
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import ImageIdentity, MetricsFile
from harness_contract.spec import ExperimentSpec
from harness_contract.study.driver import StudyDriver
from harness_contract.study.framework import Framework


@dataclass
class Study:
    fw: Framework
    spec: ExperimentSpec
    data: Cifar10
    out_dir: Path
    run_id: str
    runtime: str
    # The container image it runs in, as the host named it (None: on the host).
    image: ImageIdentity | None = None

    def run(self, threads: int) -> MetricsFile:
        """Run every phase at ``threads`` threads; metrics.json is in ``out_dir``."""
        driver = StudyDriver(
            self.fw,
            self.spec,
            self.data,
            FrameworkDir(Path(self.out_dir)),
            self.run_id,
            self.runtime,
            self.image,
        )
        return driver.run(threads)
