"""The child process of harness_contract.support: ``python -m harness_contract.support_child
MODULE SLUG...`` imports MODULE, runs its probes in order and prints one ``@@probe {json}``
line per probe (anything else on stdout is ignored)."""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback

from .failures import reason_of


def main(argv: list[str]) -> int:
    module, slugs = argv[0], argv[1:]
    probes = importlib.import_module(module).PROBES
    for slug in slugs:
        started = time.perf_counter()
        try:
            probe = probes.get(slug)
            if probe is None:
                outcome, detail = "not probed", f"{module} has no probe for this"
            else:
                outcome, detail = probe()
        except Exception as exc:  # the capability failed: that is the answer, with its error
            traceback.print_exc(file=sys.stderr)
            outcome, detail = "no", reason_of(exc)
        answer = {"outcome": outcome, "detail": detail, "seconds": time.perf_counter() - started}
        print("@@probe " + json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
