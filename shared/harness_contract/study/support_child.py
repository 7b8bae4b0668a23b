"""The child process of harness_contract.study.support:
``python -m harness_contract.study.support_child FD MODULE SLUG...`` imports MODULE, runs
its probes in order and writes one ``@@probe {json}`` line per probe to file descriptor
FD (its answer pipe; stdout and stderr go to probes.log). A MODULE that cannot be
imported answers every probe "no" with its error."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable

from harness_contract.failures import reason_of

Answer = tuple[str, str | None]


def _load(module: str) -> tuple[dict[str, Callable[[], Answer]], str | None]:
    """The module's probes, or none and the import error (a missing dependency is an
    answer too: the capability is not there)."""
    try:
        return importlib.import_module(module).PROBES, None
    except Exception as exc:  # noqa: BLE001 - any import-time failure is the answer
        traceback.print_exc(file=sys.stderr)
        return {}, reason_of(exc)


def _ask(probe: Callable[[], Answer] | None, module: str) -> Answer:
    if probe is None:
        return "not probed", f"{module} has no probe for this"
    try:
        return probe()
    except Exception as exc:  # the capability failed: that is the answer, with its error
        traceback.print_exc(file=sys.stderr)
        return "no", reason_of(exc)


def main(argv: list[str]) -> int:
    fd, module, slugs = int(argv[0]), argv[1], argv[2:]
    probes, import_error = _load(module)
    with os.fdopen(fd, "w", buffering=1) as answers:
        for slug in slugs:
            started = time.perf_counter()
            if import_error is not None:
                outcome, detail = "no", f"{module} could not be imported: {import_error}"
            else:
                outcome, detail = _ask(probes.get(slug), module)
            answer = {
                "outcome": outcome,
                "detail": detail,
                "seconds": time.perf_counter() - started,
            }
            answers.write("@@probe " + json.dumps(answer) + "\n")
            answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
