"""Fake probe modules for the support driver's tests (harness_contract.study.support): each
dict answers harness_contract.study.support.PROBES the way a runner's probes module does, with
the misbehaviours the driver must survive. The driver runs them in a child process
(``python -m harness_contract.study.support_child tests.probe_fixtures``); the environment
variable PROBE_FIXTURE picks the scenario, as the child inherits the test's environment."""

from __future__ import annotations

import io
import os
import sys
import threading
import time

HANG_S = 30.0  # far past the 1 s bound the tests give


def _yes() -> tuple[str, str]:
    return "yes", "worked"


def _slow_yes() -> tuple[str, str]:
    # Answers alone on the pipe: the answer before it was read long ago.
    time.sleep(0.3)
    return "yes", "worked slowly"


def _raises() -> tuple[str, str]:
    raise RuntimeError("no int8 kernel for this device")


def _hangs() -> tuple[str, str]:
    time.sleep(HANG_S)
    return "yes", "woke up too late"


def _exits() -> tuple[str, str]:
    os._exit(3)  # a native crash takes the interpreter down without a Python error


def _unknown() -> tuple[str, str]:
    return "maybe", "an outcome the contract does not know"


def _not_probed() -> tuple[str, str]:
    return "not probed", "no GPU here"


def _noisy() -> tuple[str, str]:
    # Libraries print to stdout. Block-buffered (Python's default on a pipe, whatever
    # PYTHONUNBUFFERED says in the test's environment), the noise and the answer the
    # child prints next leave in one write.
    sys.stdout = io.TextIOWrapper(open(1, "wb", buffering=8192, closefd=False))  # noqa: SIM115
    print("a library's progress line")
    return "yes", "answered after printing"


def _partial_line() -> tuple[str, str]:
    # A progress bar redrawn in place leaves no newline before the child's answer.
    print("50%", end="", flush=True)
    return "yes", "answered after a partial line"


def _stays_alive() -> tuple[str, str]:
    # A worker thread a library starts and never stops keeps the interpreter from exiting.
    threading.Thread(target=time.sleep, args=(HANG_S,), daemon=False).start()
    return "yes", "left a thread running"


# Every kind of answer, in the order of harness_contract.study.support.PROBES; slugs left out
# ("embedding", "per_layer_access", "int8_export") must be "not probed" by the child.
MIXED = {
    "int8_cpu": _raises,
    "int8_gpu": _slow_yes,
    "int8_native": _hangs,
    "profiler_training": _yes,
    "profiler_int8": _exits,
    "auto_fusion": _yes,
    "auto_setup": _unknown,
    "qat_convert": _not_probed,
    "custom_layer": _yes,
}
# A probe that prints before answering, followed by one that hangs: the answer must not
# wait behind the hang.
NOISY = {"int8_cpu": _noisy, "int8_gpu": _hangs, "int8_native": _yes}
NO_NEWLINE = {"int8_cpu": _partial_line, "int8_gpu": _yes}
# The last probe answers but leaves the child unable to exit.
STAYS_ALIVE = {"int8_cpu": _yes, "int8_gpu": _stays_alive}

# A probes module that cannot be imported (a missing dependency): see the end of this file.
SCENARIOS = {"mixed": MIXED, "noisy": NOISY, "no_newline": NO_NEWLINE, "stays_alive": STAYS_ALIVE}
SCENARIO = os.environ.get("PROBE_FIXTURE", "mixed")
if SCENARIO == "broken":
    raise ImportError("No module named 'torchao' (planted by tests/probe_fixtures.py)")
PROBES = SCENARIOS[SCENARIO]
