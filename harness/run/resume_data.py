"""``--resume`` uses the dataset the run started with: the one recorded in run.json (or,
for a run made before run.json, in a framework's metrics.json), checked by digest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from harness.data.source import DataChoice, choose_data, synthetic_for
from harness.run.record import StudyRecord
from harness.run.rundir import RunDir
from harness_contract.data.cifar import check_dataset
from harness_contract.errors import DataError, HarnessError
from harness_contract.spec import ExperimentSpec


@dataclass(frozen=True)
class RecordedData:
    digest: str
    path: Path | None  # None when only a container path (/data) was recorded
    origin: str
    where: str  # which file recorded it, for messages


def resume_choice(
    given: Path | None, spec: ExperimentSpec, recorded: RecordedData | None
) -> DataChoice:
    """The dataset given, else the recorded one (checked like any other); a synthetic one
    gone from the cache is made again (same spec, same seed: the same files)."""
    if given is not None or recorded is None or recorded.path is None:
        return choose_data(given, spec)
    if recorded.path.is_dir():
        choice = choose_data(recorded.path, spec)
        return replace(choice, origin=f"{recorded.origin}, as recorded in {recorded.where}")
    if recorded.origin == "synthetic":
        return replace(choose_data(synthetic_for(spec), spec), origin="synthetic, made again")
    raise DataError(
        f"the run's dataset {recorded.path} (recorded in {recorded.where}) is gone",
        f"pass --data DIR holding the same files (digest {recorded.digest[:16]})",
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
    now = digest_of(choice)
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


def digest_of(choice: DataChoice) -> str:
    """The digest ``load_cifar10`` will record for this dataset (from the check already
    made when there was one)."""
    summary = choice.summary or check_dataset(choice.path)
    return summary.digest
