"""``<run>/run.json``: the choices a run was started with that spec.json does not hold
(frameworks, dataset path and digest, backend, GPUs, timeout, whether untested
framework versions were allowed), so ``--resume`` finishes
the same study rather than a new one. Device and threads are in spec.json already."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness_contract.errors import HarnessError
from harness_contract.fs.atomic import write_json_atomic
from harness_contract.metrics import now_iso


@dataclass(frozen=True)
class StudyRecord:
    command: str  # "compare" or "run"
    frameworks: list[str]
    data_path: str  # absolute, on the host
    data_digest: str
    data_origin: str  # "given", "found (...)" or "synthetic"
    backend: str
    gpus: str | None = None
    timeout_s: float | None = None
    allow_untested_versions: bool = False  # its runners ran with --allow-untested-versions
    created_at: str = field(default_factory=now_iso)

    def write(self, path: Path) -> None:
        write_json_atomic(path, asdict(self))

    @classmethod
    def read(cls, path: Path) -> StudyRecord | None:
        """The record, or None for a run made before run.json existed."""
        try:
            raw = json.loads(path.read_text())
            return cls(**raw)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise HarnessError(
                f"{path} cannot be read ({exc})",
                "restore it, or delete it to resume with the options you pass",
            ) from None
