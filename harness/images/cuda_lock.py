"""Record a CUDA image build in the image lock's ``[<framework>.cuda]`` table.

A targeted text edit (publish_lock.edit_lock, as ``harness images push`` makes): only the
table's image_id, cuda and cudnn lines change, so comments and layout stay; the new text is
parsed back and compared before it replaces the file atomically.
"""

from __future__ import annotations

from pathlib import Path

from harness.images.base_lock import DIGEST, _find_key, _table_span
from harness.images.publish_lock import UNCHANGED, edit_lock
from harness_contract.errors import HarnessError


def record_cuda(path: Path, framework: str, image_id: str, cuda: str, cudnn: str) -> None:
    """Set ``[framework.cuda]``'s image_id, cuda and cudnn in the lock at ``path``."""
    values = {"image_id": image_id, "cuda": cuda, "cudnn": cudnn}
    if not DIGEST.fullmatch(image_id) or not cuda or not cudnn:
        raise HarnessError(
            f"refusing to record the {framework} CUDA image {values} in {path}",
            f"rebuild with `harness images build --cuda --record`; {UNCHANGED}",
        )
    edit_lock(
        path,
        lambda text: rewrite_cuda(text, framework, values),
        lambda old: old.setdefault(framework, {}).setdefault("cuda", {}).update(values),
        what="the CUDA image",
        scope=f"[{framework}.cuda]",
        layout=f"one [{framework}.cuda] table",
    )


def rewrite_cuda(text: str, framework: str, values: dict[str, str]) -> str:
    """``text`` with ``[framework.cuda]``'s keys set, the table added at the end if absent."""
    lines = text.splitlines(keepends=True)
    header = f"[{framework}.cuda]"
    if not any(line.split("#")[0].strip() == header for line in lines):
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines += ["\n", header + "\n"]
    start, end = _table_span(lines, f"{framework}.cuda")
    newline = "\r\n" if lines[start].endswith("\r\n") else "\n"
    for key, value in values.items():
        line = f'{key} = "{value}"{newline}'
        at = _find_key(lines, start, end, key)
        if at is None:  # at the end of the table's keys, before the next table's comments
            lines.insert(end, line)
            end += 1
        else:
            lines[at] = line
    return "".join(lines)
