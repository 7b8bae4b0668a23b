"""Record a pushed image's digest and reference in the image lock file.

A targeted text edit, like ``harness images lock`` does for the bases: only the
framework table's ``published_digest`` and ``published_ref`` lines change, so comments
and layout stay; the new text is parsed back and compared before it replaces the file
atomically (a crash leaves the old file or the new one, never half of either).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.images.base_lock import DIGEST, _find_key, _table_span
from harness_contract.errors import HarnessError
from harness_contract.fs.atomic import write_text_atomic

UNCHANGED = "the lock file was left unchanged"


def record_published(path: Path, framework: str, digest: str, reference: str) -> None:
    """Set ``[framework]``'s published_digest and published_ref in the lock at ``path``."""
    if not DIGEST.fullmatch(digest) or not reference.endswith("@" + digest):
        raise HarnessError(
            f"refusing to record {reference!r} (digest {digest!r}) for {framework}",
            f"push again; {UNCHANGED}",
        )
    edit_lock(
        path,
        lambda text: rewrite_published(text, framework, digest, reference),
        lambda old: old[framework].update(published_digest=digest, published_ref=reference),
        what="the digest",
        scope=f"{framework}'s published lines",
        layout=f"one [{framework}] table",
    )


def edit_lock(
    path: Path,
    rewrite: Callable[[str], str],
    expect: Callable[[dict[str, Any]], None],
    *,
    what: str,
    scope: str,
    layout: str,
) -> None:
    """Rewrite the lock at ``path`` by ``rewrite``, check the result parses to the old
    lock changed only as ``expect`` changes it, and replace the file atomically."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(
            f"cannot read the image lock {path} ({exc.strerror})", "restore it"
        ) from exc
    new_text = rewrite(text)
    try:
        old, new = tomllib.loads(text), tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"recording {what} would break {path} ({exc})", UNCHANGED) from exc
    expect(old)
    if old != new:
        raise HarnessError(
            f"recording {what} would change more than {scope} in {path}",
            f"restore its layout ({layout}); {UNCHANGED}",
        )
    if new_text != text:
        write_text_atomic(path, new_text)


def rewrite_published(text: str, framework: str, digest: str, reference: str) -> str:
    """``text`` with the two published lines of ``[framework]`` set (added if absent)."""
    lines = text.splitlines(keepends=True)
    start, end = _table_span(lines, framework)
    newline = "\r\n" if lines[start].endswith("\r\n") else "\n"
    digest_line = f'published_digest = "{digest}"{newline}'
    ref_line = f'published_ref = "{reference}"{newline}'
    at = _find_key(lines, start, end, "published_digest")
    if at is None:  # goes at the end of the table's keys, before the next table's comments
        lines.insert(end, digest_line)
        at = end
    else:
        lines[at] = digest_line
    ref_at = _find_key(lines, start, end + 1, "published_ref")
    if ref_at is None:
        lines.insert(at + 1, ref_line)
    else:
        lines[ref_at] = ref_line
    return "".join(lines)
