"""The original run's model files against the digests its metrics.json recorded: a file
changed or gone since the run is named. Such a run cannot be reproduced (what would the
rerun be compared with?), so any finding here makes the verdict "not reproduced"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.reproduce.original import Original
from harness_contract.fs.digests import sha256_file
from harness_contract.fs.oserrors import os_error
from harness_contract.layout import FrameworkDir
from harness_contract.metrics import MetricsFile

Status = Literal["ok", "changed", "missing"]


@dataclass(frozen=True)
class FileCheck:
    framework: str
    variant: str
    file: str  # relative to the framework directory, as recorded
    status: Status
    recorded_sha256: str
    actual_sha256: str | None  # None when the file is missing

    @property
    def where(self) -> str:
        return f"{self.framework}/{self.file}"

    def describe(self) -> str:
        if self.status == "missing":
            return f"{self.where} is missing"
        return (
            f"{self.where} has sha256 {self.actual_sha256[:16]}, "  # type: ignore[index]
            f"not the recorded {self.recorded_sha256[:16]}"
        )


def _sha256(path: Path) -> str:
    # The code the runners recorded the digests with (harness_contract.fs.digests).
    try:
        return sha256_file(path)
    except OSError as exc:
        raise os_error(exc, path, "fix its permissions, then reproduce again") from None


def verify_framework(name: str, fw: FrameworkDir, metrics: MetricsFile) -> list[FileCheck]:
    checks = []
    for variant, vm in metrics.variants.items():
        for art in vm.model_files():
            path = fw.path / art.file
            if not path.is_file():
                checks.append(FileCheck(name, variant, art.file, "missing", art.sha256, None))
                continue
            actual = _sha256(path)
            status: Status = "ok" if actual == art.sha256 else "changed"
            checks.append(FileCheck(name, variant, art.file, status, art.sha256, actual))
    return checks


def verify_original(original: Original) -> list[FileCheck]:
    """One check per recorded artifact, in framework and variant order."""
    return [
        check
        for name, metrics in original.metrics.items()
        for check in verify_framework(name, original.run.framework(name), metrics)
    ]
