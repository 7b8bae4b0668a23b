"""How a study ended, said truthfully: every framework asked for is complete with every
phase ok, or the final line names what failed (a framework with no metrics.json, a
failed or timed-out runner, a failed phase) with its reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.launch import LaunchResult
from harness.run.rundir import RunDir
from harness_contract.errors import HarnessError
from harness_contract.exit_codes import ExitCode
from harness_contract.metrics import COMPLETE_WITH_FAILURES, read_metrics


@dataclass(frozen=True)
class Verdict:
    problems: list[str]  # one entry per framework or failed phase, with its reason
    interrupted: bool
    only_bad_input: bool  # every failure was the user's input: exit 2, not 1
    nothing_finished: bool  # no framework ran to its end

    @property
    def ok(self) -> bool:
        return not self.problems and not self.interrupted

    @property
    def exit_code(self) -> ExitCode:
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if not self.problems:
            return ExitCode.OK
        return ExitCode.USER_ERROR if self.only_bad_input else ExitCode.FAILED


def judge(run: RunDir, frameworks: Sequence[str], launched: Sequence[LaunchResult]) -> Verdict:
    by_name = {r.framework: r for r in launched}
    problems: list[str] = []
    finished = 0
    for name in frameworks:
        result = by_name.get(name)
        if result is not None and result.outcome != "complete":
            problems.append(f"{name}: {result.message}")
            continue
        found, ran_to_end = _framework_problems(run, name)
        problems += found
        finished += ran_to_end
    failed = [r for r in launched if r.outcome != "complete"]
    return Verdict(
        problems=problems,
        interrupted=any(r.outcome == "interrupted" for r in launched),
        only_bad_input=bool(failed)
        and all(r.outcome == "user_error" for r in failed)
        and len(failed) == len(problems),
        nothing_finished=finished == 0,
    )


def _framework_problems(run: RunDir, name: str) -> tuple[list[str], bool]:
    """What is wrong with one framework's results, and whether its study ran to the end."""
    out = run.framework(name)
    if not out.metrics.is_file():
        return [f"{name}: left no metrics.json (see {out.log})"], False
    try:
        metrics = read_metrics(out.metrics)
    except HarnessError as exc:
        return [f"{name}: {exc.one_line()}"], False
    if metrics.status != "complete":
        return [f"{name}: {metrics.status} ({metrics.error or 'no reason recorded'})"], False
    return [f"{name} {what}: failed ({reason})" for what, reason in metrics.failures()], True


def final_line(verdict: Verdict, resume_hint: str) -> str:
    """The study's last line (without the ``error:`` prefix the CLI adds)."""
    if verdict.interrupted:
        return f"interrupted; completed results are kept; finish with: {resume_hint}"
    joined = "; ".join(verdict.problems)
    if verdict.only_bad_input:
        return joined
    ended = "failed" if verdict.nothing_finished else COMPLETE_WITH_FAILURES
    return f"study {ended}: {joined}; retry with: {resume_hint}"
