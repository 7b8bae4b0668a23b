"""Record a CUDA image build in the image lock's ``[<framework>.cuda]`` table.

A targeted text edit like ``harness images push`` makes (publish_lock.py): only the
table's image_id, cuda and cudnn lines change, so comments and layout stay; the new text is
parsed back and compared before it replaces the file atomically.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from harness.images.base_lock import DIGEST, _find_key, _table_span
from harness_contract.errors import HarnessError
from harness_contract.fs.atomic import write_text_atomic

UNCHANGED = "the lock file was left unchanged"


def record_cuda(path: Path, framework: str, image_id: str, cuda: str, cudnn: str) -> None:
    """Set ``[framework.cuda]``'s image_id, cuda and cudnn in the lock at ``path``."""
    values = {"image_id": image_id, "cuda": cuda, "cudnn": cudnn}
    if not DIGEST.fullmatch(image_id) or not cuda or not cudnn:
        raise HarnessError(
            f"refusing to record the {framework} CUDA image {values} in {path}",
            f"rebuild with `harness images build --cuda --record`; {UNCHANGED}",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(
            f"cannot read the image lock {path} ({exc.strerror})", "restore it"
        ) from exc
    new_text = rewrite_cuda(text, framework, values)
    _check_only_cuda_changed(text, new_text, framework, values, path)
    if new_text != text:
        write_text_atomic(path, new_text)


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


def _check_only_cuda_changed(
    old_text: str, new_text: str, framework: str, values: dict[str, str], path: Path
) -> None:
    try:
        old, new = tomllib.loads(old_text), tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(
            f"recording the CUDA image would break {path} ({exc})", UNCHANGED
        ) from exc
    old.setdefault(framework, {}).setdefault("cuda", {}).update(values)
    if old != new:
        raise HarnessError(
            f"recording the CUDA image would change more than [{framework}.cuda] in {path}",
            f"restore its layout (one [{framework}.cuda] table); {UNCHANGED}",
        )
