"""Progress events: one JSON object per line on the runner's stdout, behind a marker.

The host parses these lines into its progress display and keeps every line in
runner.log; the marker tells them apart from whatever a library prints. The
channel is the same for a subprocess and a container's log stream.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

MARKER = "@@harness-event "


def emit(kind: str, stream: TextIO | None = None, **fields: Any) -> None:
    out = stream or sys.stdout
    payload = {**fields, "event": kind}
    out.write(MARKER + json.dumps(payload, default=_plain) + "\n")
    out.flush()


def _plain(value: Any) -> Any:
    """numpy scalars (a loss read off an array) become plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot send {type(value).__name__} in an event")


def parse(line: str) -> dict[str, Any] | None:
    """The event on this line, or None for ordinary output."""
    if not line.startswith(MARKER):
        return None
    try:
        event = json.loads(line[len(MARKER) :])
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "event" in event else None
