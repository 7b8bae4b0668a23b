"""``--resume`` uses the dataset the run started with: the one recorded in run.json (or,
for a run made before run.json, in a framework's metrics.json), checked by digest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness_contract.errors import DataError, HarnessError
from harness_contract.spec import ExperimentSpec

from .data_identity import dataset_digest
from .dataset_source import DataChoice, synthetic_for
from .rundir import RunDir
from .study_record import StudyRecord


@dataclass(frozen=True)
class RecordedData:
    digest: str
    path: Path | None  # None when only a container path (/data) was recorded
    origin: str
    where: str  # which file recorded it, for messages

    def choice(self, spec: ExperimentSpec) -> DataChoice:
        """The recorded dataset, still there; a synthetic one gone from the cache is
        made again (same spec, same seed: the same files)."""
        assert self.path is not None
        if self.path.is_dir():
            return DataChoice(self.path, f"{self.origin}, as recorded in {self.where}")
        if self.origin == "synthetic":
            return DataChoice(synthetic_for(spec), "synthetic, made again")
        raise DataError(
            f"the run's dataset {self.path} (recorded in {self.where}) is gone",
            f"pass --data DIR holding the same files (digest {self.digest[:16]})",
        )


def recorded_dataset(run: RunDir, record: StudyRecord | None) -> RecordedData | None:
    if record is not None:
        return RecordedData(
            record.data_digest, Path(record.data_path), record.data_origin, run.record_path.name
        )
    for name in run.framework_names():
        metrics = run.read_framework(name)
        if metrics is None:
            continue
        path = Path(metrics.dataset.path)
        local = metrics.provenance.runtime.startswith("local")
        where = f"{name}/metrics.json"
        origin = metrics.dataset.kind if metrics.dataset.kind == "synthetic" else "given"
        return RecordedData(metrics.dataset.digest, path if local else None, origin, where)
    return None


def same_data(
    run: RunDir,
    recorded: RecordedData,
    choice: DataChoice,
    force: bool,
    say: Callable[[str], None],
) -> None:
    """Refuse to finish a run on other data than it started with, unless forced."""
    now = dataset_digest(choice.path)
    if now == recorded.digest:
        return
    mismatch = (
        f"the dataset at {choice.path} has digest {now[:16]}, but run {run.run_id} "
        f"started on digest {recorded.digest[:16]} ({recorded.where})"
    )
    if not force:
        raise HarnessError(
            mismatch,
            "resume with the same data, or pass --force-data to finish it on this data anyway",
        )
    say(f"note: {mismatch}; continuing on it because of --force-data")
