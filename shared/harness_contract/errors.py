"""Errors a user can cause. Each carries the problem and the fix, rendered as one line."""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can fix; never shown with a traceback."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def one_line(self) -> str:
        line = self.problem.rstrip(".")
        if self.fix:
            line += f"; {self.fix.rstrip('.')}"
        return " ".join(line.split())


class SpecError(HarnessError):
    """The experiment spec or an override is invalid."""


class DataError(HarnessError):
    """The CIFAR-10 directory is missing, truncated, corrupt or inconsistent."""


class MetricsError(HarnessError):
    """A metrics.json file does not match the schema."""
