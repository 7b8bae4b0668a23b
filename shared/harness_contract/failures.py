"""Why something failed, as one short line for metrics.json (the traceback goes to the log).

Some errors only wrap the real one: TensorFlow's ``StagingError: in user code:`` carries
the traced function's frames and, at the end, the error raised inside it; torch.export
and tf.function errors do the same. The line recorded is the root cause.
"""

from __future__ import annotations

import re

MAX_REASON = 500

# "ValueError: message" or "tensorflow.python.framework.errors_impl.InvalidArgumentError: m",
# alone on its line (indented, as in a wrapped traceback): what a traceback ends with.
_ERROR_LINE = re.compile(
    r"^\s*(?:[A-Za-z_][\w]*\.)*(?P<name>[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt))"
    r":[ \t]*(?P<message>.*)$"
)
_EMPTY = {
    "MemoryError": "out of memory",
}


def root_cause(name: str, message: str) -> tuple[str, str]:
    """The innermost error named in ``message``, or (name, message) when it wraps none.

    A message whose later lines hold "XxxError: ..." lines (a traceback-like block) is a
    wrapper: the last such line is the error that was raised inside it.
    """
    lines = message.splitlines()
    for line in reversed(lines[1:]):
        match = _ERROR_LINE.match(line)
        if match:
            return match["name"], match["message"].strip()
    return name, message


def reason_of(exc: BaseException) -> str:
    """``exc`` as "Name: first line of its message", after unwrapping to its root cause."""
    name, message = root_cause(type(exc).__name__, str(exc))
    first = message.strip().splitlines()[0].strip() if message.strip() else ""
    first = first or _EMPTY.get(name, "")
    line = f"{name}: {first}" if first else name
    return line[:MAX_REASON]
