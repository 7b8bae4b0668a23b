"""What to rerun, from what the original recorded: its spec.json as is, its frameworks,
seed and timeout (run.json), its dataset (checked by digest), and its backend (docker
when its metrics name an image). The study itself is launched by ``run_study``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.cli.options import DEFAULT_PRESET, StudyOptions
from harness.data.source import DataChoice
from harness.reproduce.original import Original
from harness_contract.errors import HarnessError
from harness_contract.spec import build_spec, effective_threads

REPRO_MARK = "-repro-"


@dataclass(frozen=True)
class ReproduceOptions:
    run_dir: Path
    backend: str | None = None  # None: the backend the original ran with
    pull: bool = False
    data: Path | None = None
    force_data: bool = False


def recorded_backend(original: Original) -> str:
    """docker when any framework ran in an image, else local ("auto" is never a rerun's
    choice: the rerun must run where the original did, or say it does not)."""
    if any(m.provenance.image is not None for m in original.metrics.values()):
        return "docker"
    return "local"


def check_backend(name: str) -> str:
    if name not in ("local", "docker"):
        raise HarnessError(f"unknown backend '{name}' for reproduce", "use local or docker")
    return name


def new_run_id(original: Original) -> str:
    """``<run-id>-repro-<n>``: the first name free beside the original."""
    parent, base = original.run.path.parent, original.run.run_id
    n = 1
    while (parent / f"{base}{REPRO_MARK}{n}").exists():
        n += 1
    return f"{base}{REPRO_MARK}{n}"


def choose_rerun_data(
    original: Original, given: Path | None, force: bool, say: Callable[[str], None]
) -> DataChoice:
    """The recorded dataset (or ``--data``), refused when its digest is not the recorded one
    unless ``force``: other data cannot give the same bits."""
    from harness.run.resume_data import digest_of, recorded_dataset, resume_choice

    recorded = recorded_dataset(original.run, original.record)
    choice = resume_choice(given, original.spec, recorded)
    if recorded is None:
        return choice
    now = digest_of(choice)
    if now == recorded.digest:
        return choice
    mismatch = (
        f"the dataset at {choice.path} has digest {now[:16]}, but run {original.run.run_id} "
        f"ran on digest {recorded.digest[:16]} ({recorded.where})"
    )
    if not force:
        raise HarnessError(
            mismatch,
            "pass --data DIR holding the run's data, or --force-data to rerun on this data "
            "anyway (the bits will then differ)",
        )
    say(f"note: {mismatch}; rerunning on it because of --force-data")
    return choice


def recorded_threads(original: Original) -> int | None:
    """The thread count to pin the rerun to: the original's, when its spec left threads to
    the machine and this machine would pick another count (threads decide the bits).
    None when spec.json already gives the same count here (then it is rerun as it is)."""
    if original.spec.measure.threads is not None:
        return None
    counts = {m.provenance.threads for m in original.metrics.values()}
    if len(counts) != 1:
        return None
    recorded = counts.pop()
    return None if recorded == effective_threads(original.spec) else recorded


def study_options(
    original: Original,
    backend: str,
    data: DataChoice,
    run_id: str,
    say: Callable[[str], None] = lambda _: None,
) -> StudyOptions:
    """The rerun as ``harness compare``/``run`` would be asked for it."""
    spec_path = original.run.spec_path
    # spec.json is a fully resolved spec: laid over the preset it must resolve to itself.
    if build_spec(DEFAULT_PRESET, spec_path, []).digest() != original.spec.digest():
        raise HarnessError(
            f"{spec_path} does not resolve to the spec it records",
            "reproduce it with the harness version that made it",
        )
    record = original.record
    threads = recorded_threads(original)
    if threads is not None:
        say(
            f"note: the original ran at {threads} threads (its spec left them to the machine, "
            "which here picks another count); the rerun is pinned to the same count"
        )
    return StudyOptions(
        command=record.command if record else "compare",
        frameworks=",".join(original.frameworks),
        spec_file=spec_path,
        data=data.path,
        results=original.run.path.parent,
        run_id=run_id,
        backend=backend,
        timeout=record.timeout_s if record else None,
        gpus=record.gpus if record else None,
        threads=threads,
        # Rerun as the original ran: its metrics say whether it allowed untested versions.
        allow_untested_versions=any(
            m.provenance.untested_versions_allowed for m in original.metrics.values()
        ),
    )
