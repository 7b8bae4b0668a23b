"""The options ``harness compare`` and ``harness run`` share, as one object that checks
itself before any work starts (paths of the wrong kind, options --resume replaces)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from harness_contract.errors import HarnessError

DEFAULT_PRESET = "smoke"
DEFAULT_BACKEND = "local"
DEFAULT_RESULTS = Path("results")
# The way around an OS error met while writing a run (disk full, read-only, no access).
RESULTS_FIX = "pass --results on a writable disk, or fix its permissions"


MAX_RUN_ID = 200  # a directory name (255 bytes at most), with room for "-repro-<n>"


def check_run_id(run_id: str, flag: str = "--run-id") -> None:
    """Refuse a run id no runner, shell or path can carry, before anything is made: an
    empty one, one read as an option, a path, control characters, a huge one."""
    shown = run_id.encode("unicode_escape").decode("ascii")  # one line, whatever it holds
    if len(shown) > 60:
        shown = shown[:57] + "..."
    if not run_id.strip():
        problem = "is empty"
        fix = f"give the run a name, or leave {flag} out for a timestamped one"
    elif run_id.startswith("-"):
        problem = "starts with '-', so a command line would read it as an option"
        fix = "start it with a letter or a digit"
    elif any(ord(c) < 32 or ord(c) == 127 for c in run_id):
        problem = "holds a control character (a newline or tab breaks every printed path)"
        fix = "use letters, digits, '-', '_' and '.'"
    elif "/" in run_id or "\\" in run_id:
        problem = "holds a path separator"
        fix = "use a plain name; --results chooses the folder it goes in"
    elif run_id in (".", ".."):
        problem = "is not a name"
        fix = "use letters, digits, '-', '_' and '.'"
    elif len(run_id) > MAX_RUN_ID:
        problem = f"is longer than {MAX_RUN_ID} characters ({len(run_id)})"
        fix = "choose a shorter name"
    else:
        return
    raise HarnessError(f"{flag} '{shown}' {problem}", fix)


@dataclass(frozen=True)
class StudyOptions:
    command: str  # "compare" or "run": how the resume hint is spelled
    frameworks: str | None = None  # None: compare's default, or what the resumed run ran
    preset: str | None = None
    spec_file: Path | None = None
    sets: list[str] = field(default_factory=list)
    data: Path | None = None
    results: Path = DEFAULT_RESULTS
    run_id: str | None = None
    device: str | None = None
    threads: int | None = None
    backend: str | None = None  # None: local, or the resumed run's backend
    timeout: float | None = None
    resume: Path | None = None
    gpus: str | None = None
    force_data: bool = False
    # The runners may use framework versions they were not tested with (recorded loudly).
    allow_untested_versions: bool = False

    def check(self) -> None:
        """Refuse what cannot work, in one line, before anything is read or written."""
        if self.run_id is not None:
            check_run_id(self.run_id)
        if self.spec_file is not None and self.spec_file.is_dir():
            raise HarnessError(
                f"--spec {self.spec_file} is a directory", "pass a .toml or .json spec file"
            )
        if self.data is not None and self.data.exists() and not self.data.is_dir():
            raise HarnessError(
                f"--data {self.data} is a file, not a directory",
                "pass the CIFAR-10 folder (cifar-10-batches-py or the folder holding it)",
            )
        if self.results.exists() and not self.results.is_dir():
            raise HarnessError(
                f"--results {self.results} is a file, not a directory",
                "pass a directory for the run directories (it is created if missing)",
            )
        if self.resume is None:
            if self.force_data:
                raise HarnessError("--force-data only applies with --resume", "drop it")
            return
        replaced = [
            flag
            for flag, value in (
                ("--preset", self.preset),
                ("--spec", self.spec_file),
                ("--set", self.sets),
                ("--device", self.device),
                ("--threads", self.threads),
                ("--run-id", self.run_id),
            )
            if value
        ]
        if replaced:
            raise HarnessError(
                f"--resume reuses the run's own spec.json and name, so {'/'.join(replaced)} "
                "cannot change it",
                f"drop {'/'.join(replaced)} when resuming, or start a new run without --resume",
            )

    def overrides(self) -> list[str]:
        """--set, plus --device and --threads spelled as the spec keys they set."""
        out = list(self.sets)
        if self.device is not None:
            out.append(f"device={self.device}")
        if self.threads is not None:
            out.append(f"measure.threads={self.threads}")
        return out


def resume_command(command: str, frameworks: list[str], run_dir: Path) -> str:
    """The command that finishes ``run_dir``; everything else is recorded in run.json."""
    chosen = ",".join(frameworks)
    which = f"--frameworks {chosen}" if command == "compare" else chosen
    return f"harness {command} {which} --resume {shlex.quote(str(run_dir))}"
