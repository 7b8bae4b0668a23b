"""The run to reproduce, opened read-only: it must be a finished run of this schema that
no live process owns. Every refusal is one line with the fix (exit 2)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.cli.options import resume_command
from harness.run import owner_lock as lock
from harness.run.record import StudyRecord
from harness.run.rundir import RunDir
from harness_contract.errors import HarnessError
from harness_contract.metrics import MetricsFile, read_metrics
from harness_contract.spec import ExperimentSpec

RERUN_FIX = "rerun the study with this harness version, then reproduce that run"


@dataclass(frozen=True)
class Original:
    run: RunDir
    spec: ExperimentSpec
    record: StudyRecord | None  # None: a run made before run.json
    metrics: dict[str, MetricsFile]  # every framework the run was asked for, complete

    @property
    def frameworks(self) -> list[str]:
        return list(self.metrics)


def open_original(path: Path) -> Original:
    """The finished run at ``path``, or a HarnessError saying why it cannot be reproduced."""
    run = _run_dir(Path(path))
    _refuse_if_live(run)
    spec = _spec(run)
    record = StudyRecord.read(run.record_path)
    names = list(record.frameworks) if record else run.framework_names()
    if not names:
        raise HarnessError(f"{run.path} holds no framework results", RERUN_FIX)
    command = record.command if record else "compare"
    metrics = {name: _finished(run, name, names, command) for name in names}
    for name, found in metrics.items():
        _digests_recorded(run, name, found)
    return Original(run, spec, record, metrics)


def _run_dir(path: Path) -> RunDir:
    # The original is only read: it need not be writable.
    RunDir.open(path, writable=False)
    return RunDir(path.resolve())  # "." must still name the run, so the rerun goes beside it


def _refuse_if_live(run: RunDir) -> None:
    """The lock refusal other commands give, without taking the lock: taking it would
    write into the original, which reproduce never does."""
    lock.refuse_if_owned(run.path, run.lock_path)


def _spec(run: RunDir) -> ExperimentSpec:
    try:
        return run.spec
    except HarnessError as exc:  # SpecError names the field this version refuses
        raise HarnessError(
            f"{run.spec_path} cannot be loaded by this harness version: {exc.problem}",
            "reproduce it with the harness version that made it "
            "(provenance.harness_version in its metrics.json)",
        ) from None


def _finished(run: RunDir, name: str, names: list[str], command: str) -> MetricsFile:
    path = run.framework(name).metrics
    finish = f"finish it first: {resume_command(command, names, run.path)}"
    if not path.is_file():
        raise HarnessError(f"run {run.run_id} is unfinished: {name} left no metrics.json", finish)
    metrics = read_metrics(path)  # a MetricsError names the file and the field
    if metrics.outcome != "complete":
        why = f" ({metrics.error})" if metrics.error else ""
        raise HarnessError(
            f"run {run.run_id} is unfinished: {name} is '{metrics.outcome}'{why}", finish
        )
    return metrics


def _digests_recorded(run: RunDir, name: str, metrics: MetricsFile) -> None:
    if metrics.schema_version < 2:
        raise HarnessError(
            f"{name}/metrics.json of {run.run_id} is schema {metrics.schema_version}, written "
            "before artifact digests, so it cannot be checked bit for bit",
            RERUN_FIX,
        )
    bare = [v for v, vm in metrics.variants.items() if vm.status == "ok" and not vm.artifacts]
    if bare:
        raise HarnessError(
            f"{name}/metrics.json of {run.run_id} records no artifact digests for "
            f"{', '.join(bare)}, so it cannot be checked bit for bit",
            RERUN_FIX,
        )
